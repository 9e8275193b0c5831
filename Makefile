# Two commands for a fresh machine:  make run  (start the service)  and  make test  (run the tests).
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin
PORT ?= 8000

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: install run test conformance bench load screenshots
install: $(BIN)/.installed

# chalice local without its reloader (it restarts on any file written under the project): restart after editing code.
run: install
	$(BIN)/chalice local --no-autoreload --port $(PORT) --stage dev

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

conformance: install
	@test -f ../shared/conformance/run.py || { echo "make conformance: ../shared/conformance/run.py is missing (the AWS-result cases live next to this checkout, not in it)"; exit 1; }
	$(BIN)/python ../shared/conformance/run.py --entry chalicelib:run_virtual --min-rate 0.99
	$(BIN)/python -m pytest -q tests/conformance

bench: install
	$(BIN)/python bench/interpreter.py
	$(BIN)/python bench/service.py
	$(BIN)/python bench/history.py
	$(BIN)/python bench/payload.py
	$(BIN)/python bench/local_latency.py
	$(BIN)/python bench/redemption.py
	$(BIN)/python bench/points.py
	$(BIN)/python bench/concurrent_answers.py
	$(BIN)/python bench/regexes.py
	$(BIN)/python bench/listing.py
	$(BIN)/python bench/events.py
	$(BIN)/python bench/distributed_map.py
	$(BIN)/python bench/activities.py
	$(BIN)/python bench/redrive.py

# The long form of the load test, then lost responses with servers SIGKILLed (flushes the database of REDIS_URL).
load: install
	$(BIN)/python bench/load.py --processes 8 --executions 20000 --lost-executions 3000 --servers 3 --kill-every 3

# Refresh docs/*.png: the browser test's screenshots of the approval, confirmation and outcome pages.
screenshots: install
	BROWSER_SCREENSHOTS_DIR=docs $(BIN)/python -m pytest -q tests/approvals/test_browser.py
