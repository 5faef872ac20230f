# Every target builds .venv from pyproject.toml on first use (and again when it changes).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
HOSTNAME := $(shell hostname 2>/dev/null || echo host)
HOSTGUARD ?= $(VENV)/bin/hostguard
REPORTS ?= reports

.PHONY: audit test test-plain-records lint lint-policies schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,deploy]'
	touch $(STAMP)

## audit: one-shot audit of this host with the shipped policy: the findings, then the JSON result
## and the HTML report in $(REPORTS)/ (their paths printed); exit 0 whenever the audit ran.
## AUDIT_ARGS adds to the command line, e.g. the opt-in CIS policy:
## make audit AUDIT_ARGS="--policy policies/cis-debian.yaml --label benchmark=cis-debian"
AUDIT_ARGS ?=
audit: $(STAMP)
	@mkdir -p $(REPORTS)
	@$(HOSTGUARD) audit --policy policies/trading-baseline.yaml $(AUDIT_ARGS) --format json \
		--output $(REPORTS)/audit-$(HOSTNAME).json --report html --output-dir $(REPORTS); \
	rc=$$?; case $$rc in 0|1|3|5) ;; *) exit $$rc;; esac

## test: ruff, mypy, the schema freshness check, policy lint, then the whole test suite
test: lint lint-policies
	$(PY) -m pytest

## test-plain-records: the test suite again, every @record built as a plain frozen dataclass
## (agent/core/record.py's switch; CI runs it after `make test`)
test-plain-records: $(STAMP)
	HOSTGUARD_PLAIN_RECORDS=1 $(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check agent tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m agent.policy.schema --check
	$(PY) -m agent.seccomp.profile --check

lint-policies: $(STAMP)
	$(VENV)/bin/hostguard lint --strict policies

## schema: regenerate the published schemas (policy, seccomp profile) from their declarations
schema: $(STAMP)
	$(PY) -m agent.policy.schema --write
	$(PY) -m agent.seccomp.profile --write

bench: $(STAMP)
	$(PY) benchmarks/lint_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
