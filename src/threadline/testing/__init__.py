"""Tools for testing code built on threadline; import its modules from your tests only.

``threadline.testing.store_conformance`` is the suite every message store must pass, and
``threadline.testing.memory_conformance`` the one every long-term memory store must pass.
"""
