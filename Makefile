# The two entry points a newcomer needs; see README.md.
.PHONY: demo test lint bench

demo:  ## simulated Asterisk + service + generated calls on the embedded defaults
	scripts/demo.sh

test:  ## install what the tests need (Debian + Python packages), start servers, run pytest
	scripts/test.sh

lint:
	ruff check callcenter tests bench

bench:  ## AMI path and bus benchmarks (needs Redis on 127.0.0.1:6379); see bench/RESULTS.md
	python bench/ami_throughput.py
	python bench/bus_throughput.py
