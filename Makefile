# The two entry points a newcomer needs; see README.md.
.PHONY: demo test lint bench

demo:  ## simulated Asterisk + service + generated calls on the embedded defaults
	scripts/demo.sh

test:  ## install what the tests need (Debian + Python packages), start servers, run pytest
	scripts/test.sh

lint:
	ruff check callcenter tests bench

bench:
	python bench/bus_throughput.py
