"""The ``threadline`` command: a thin shell of argument parsing over the library.

``threadline chat`` talks to the embedded model; ``threadline threads ...`` manages the saved
threads. Both keep threads in one SQLite file under ``$THREADLINE_HOME``.
"""
