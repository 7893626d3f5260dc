.PHONY: install format lint typecheck test check bench

install:
	CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e '.[test]'

format:
	ruff format .
	ruff check --fix .

lint:
	ruff format --check .
	ruff check .

typecheck:
	pyright

test:
	python -m pytest

check: lint typecheck test

bench:
	python bench/turn_overhead.py
	python bench/stores.py
	python bench/local_model.py
	python bench/server.py
	python bench/memory.py
	python bench/multiagent.py
	python bench/mcp_tools.py
