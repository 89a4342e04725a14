# 恶意骚扰维权助手 — every target installs what it needs first. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
RASA      := $(VENV)/bin/rasa
STAMP     := $(VENV)/.installed
SPACY_DIR := build/spacy_zh
THREAT_DIR := build/threat
MODEL     := models/weiquan.tar.gz
RASA_PORT   ?= 5005
ACTION_PORT ?= 5055
WIDGET_PORT ?= 8080
CONSOLE_PORT ?= 8090
REPLICAS    ?= 2

# Channel settings come from the environment; empty defaults keep credentials.yml loadable (WeChat stays off).
export WECHAT_TOKEN ?=
export WECHAT_APP_ID ?=
export WECHAT_AES_KEY ?=
export WECHAT_APP_SECRET ?=
export WIDGET_ALLOWED_ORIGINS ?= http://localhost:$(WIDGET_PORT) http://127.0.0.1:$(WIDGET_PORT)
# Hand-off to a person (docs/handoff.md): tokens are generated per run when empty; see weiquan/handoff/settings.py.
export OPERATOR_TOKEN ?=
export RASA_API_TOKEN ?=
# REST (docs/security.md): empty keeps it open to loopback clients only (make run); run-production generates one.
export REST_TOKEN ?=
export WIDGET_REDIS_URL ?=
export WECHAT_TRANSFER_CUSTOMER_SERVICE ?=
export PYTHONPATH := $(CURDIR)
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: help setup widget-deps browser train check-train-cached run proxy run-production profile bench-load perf-guard deploy-tools shell actions test test-unit validate test-stories test-e2e bench-nlu bench-safety bench-time screenshots console-screenshot lint clean forget purge-expired audit

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements.lock
	@test -x $(PY) || python -m venv $(VENV)
	@$(PY) -c 'import sys; assert sys.version_info[:2] == (3, 10), "Rasa 3.6 needs Python 3.10 (see .python-version)"'
	@echo "setup: installing the pinned packages into $(VENV) (about 3 min on a fresh machine, quiet while it works)"
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements.txt -c requirements.lock
	@touch $@

$(SPACY_DIR)/meta.json: $(STAMP) weiquan/nlu/spacy_pipeline.py weiquan/nlu/rule_patterns.yml $(wildcard data/dictionary/*.txt)
	@mkdir -p $(dir $(SPACY_DIR))
	$(PY) -m weiquan.nlu.spacy_pipeline $(SPACY_DIR)
	@touch $@

# The threat detector (weiquan/nlu/threat.py): trained from data/safety/ and data/nlu/, about a minute on one core.
$(THREAT_DIR)/model.json: $(STAMP) weiquan/nlu/threat.py weiquan/nlu/textnorm.py weiquan/nlu/shorthand.yml \
  weiquan/nlu/rule_patterns.yml $(wildcard data/safety/*.yml) $(wildcard data/nlu/*.yml)
	$(PY) -W ignore::UserWarning -m weiquan.nlu.threat build $(THREAT_DIR)

setup: $(STAMP) $(SPACY_DIR)/meta.json $(THREAT_DIR)/model.json ## create .venv, install pinned packages, build the spaCy rules and the threat detector

browser: ## install Debian's Chromium and CJK fonts for the browser tests (needs root)
	@command -v chromium >/dev/null && fc-list | grep -qi 'noto.*cjk' && fc-list | grep -qi 'color.*emoji' || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; }

train: setup ## train the model when its inputs changed (contents, not mtimes: scripts/train_stamp.py)
	@$(PY) scripts/train_stamp.py check $(MODEL); rc=$$?; [ $$rc = 0 ] && exit 0; \
	force=; [ $$rc = 2 ] && force=--force; start=$$(date +%s); \
	echo "train: training $(MODEL) $$force — about 4 min on 2 free cores (DIET, 20 epochs, shows a bar)"; \
	$(PY) scripts/train_stamp.py begin $(MODEL) && \
	PYTHONWARNINGS=ignore::DeprecationWarning $(RASA) train --fixed-model-name weiquan $$force && \
	$(PY) scripts/train_stamp.py write $(MODEL) && \
	echo "train: done in $$(( $$(date +%s) - start )) s"

check-train-cached: train ## prove a second `make train` with nothing changed keeps the model file untouched
	@before=$$(stat -c %Y.%s $(MODEL)); $(MAKE) --no-print-directory train >/dev/null; \
	after=$$(stat -c %Y.%s $(MODEL)); [ "$$before" = "$$after" ] && echo "check-train-cached: model untouched" || \
	{ echo "check-train-cached: a second make train rewrote $(MODEL)" >&2; exit 1; }

run: train ## start the action server, Rasa, the widget page and the operator console; restarts what crashes; Ctrl-C stops all
	$(PY) scripts/run_all.py --rasa-port $(RASA_PORT) --action-port $(ACTION_PORT) --widget-port $(WIDGET_PORT) \
	  --console-port $(CONSOLE_PORT)

proxy: ## install Debian's HAProxy for make run-production (needs root)
	@command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	@# Debian may start its own (empty) haproxy service: ours runs in the foreground under the supervisor.
	@haproxy -v | head -1

run-production: train proxy ## several-machine shape (deploy/topology.yml): HAProxy :5005, REPLICAS Rasa servers, console, PostgreSQL, Redis
	$(PY) scripts/run_all.py --production --replicas $(REPLICAS) --rasa-port $(RASA_PORT) \
	  --action-port $(ACTION_PORT) --widget-port $(WIDGET_PORT) --console-port $(CONSOLE_PORT)

profile: train ## where a complaint turn's milliseconds go; writes reports/profile.md
	$(PY) -m bench.profile

bench-load: train proxy ## ours vs moodbot under load (c=1,10,20,50) and run-production at c=20; writes reports/load.md
	$(PY) -m bench.load

perf-guard: train ## fails when a complaint turn's p50 passes 1.5x the moodbot's, side by side (bench/guard.py)
	$(PY) -m bench.guard

shell: train ## talk to the bot in the terminal
	@trap 'kill 0' INT TERM EXIT; \
	$(RASA) run actions --port $(ACTION_PORT) >/dev/null 2>&1 & \
	$(PY) scripts/wait_ready.py http://localhost:$(ACTION_PORT)/health && \
	$(RASA) shell --endpoints endpoints.yml

WIDGET_DEPS := widget/node_modules/.package-lock.json
$(WIDGET_DEPS): widget/package-lock.json
	cd widget && npm ci --no-audit --no-fund

widget-deps: $(WIDGET_DEPS) ## install the widget's build tools from widget/package-lock.json (npm ci)

deploy-tools: ## npm's dclint for the offline check of deploy/compose.yml (pinned in deploy/package-lock.json)
	@[ -x deploy/node_modules/.bin/dclint ] || npm ci --prefix deploy --no-audit --no-fund --loglevel=error

test-unit: setup $(WIDGET_DEPS) deploy-tools proxy ## engine, actions, channels, consistency, widget bundle, deploy recipe (no model)
	$(PY) -m pytest -q -m "not model and not e2e"

validate: setup ## rasa data validate --fail-on-warnings (responses uttered by actions count as used)
	$(PY) scripts/validate_data.py

test-stories: train ## Chinese test stories must be predicted exactly
	$(RASA) test core --stories tests/stories --fail-on-prediction-errors --out results/core

test-e2e: train browser proxy ## real servers: REST, socket.io, browser, WeChat webhook; NLU accuracy floor
	$(PY) -m pytest -q -m "model or e2e"

test: lint audit test-unit validate test-stories check-train-cached test-e2e perf-guard ## everything above, in order (what CI runs)

bench-nlu: setup ## NLU side by side: ours vs plain Rasa vs keywords; writes reports/
	$(PY) -m bench.nlu

bench-safety: setup ## threat detection per held-out set, with baselines; writes reports/safety_benchmark.md
	$(PY) -m bench.safety

bench-time: setup ## time-expression parser accuracy and cost; writes reports/timeparse.md
	$(PY) -m bench.timeparse

screenshots: train browser ## desktop and mobile PNGs of the widget into docs/screenshots/
	$(PY) scripts/screenshots.py

AUDIT_VENV := build/audit-venv
$(AUDIT_VENV)/.installed: requirements-audit.txt
	@test -x $(AUDIT_VENV)/bin/python || $(PY) -m venv $(AUDIT_VENV)
	$(AUDIT_VENV)/bin/python -m pip install --quiet -r requirements-audit.txt
	@touch $@

audit: setup $(AUDIT_VENV)/.installed ## known vulnerabilities in .venv and widget/ vs audit-allowlist.yml (AUDIT_STRICT=1: all checked)
	$(PY) scripts/audit.py

console-screenshot: train browser ## the operator console during a hand-off, into docs/screenshots/console.png
	$(PY) scripts/screenshot_console.py

lint: setup ## ruff on everything, mypy (check_untyped_defs) on weiquan/, actions/, scripts/ and bench/
	$(VENV)/bin/ruff check weiquan actions rasa_sdk_plugins scripts tests bench
	$(VENV)/bin/mypy weiquan actions rasa_sdk_plugins scripts bench

# Personal data: which stores to clean comes from ENDPOINTS (endpoints.production.yml for PostgreSQL). SENDER reaches
# the script through the environment (make exports command-line variables), never through the shell line.
ENDPOINTS ?= endpoints.yml

forget: setup ## delete one conversation from every store: make forget SENDER=<id> [ENDPOINTS=endpoints.yml]
	@test -n "$$SENDER" || { echo "usage: make forget SENDER=<conversation id> [ENDPOINTS=endpoints.yml]" >&2; exit 2; }
	@$(PY) scripts/forget.py --endpoints "$(ENDPOINTS)"

purge-expired: setup ## delete what is older than the retention period (RETENTION_DAYS or the endpoints file; 30 days)
	@$(PY) scripts/purge_expired.py --endpoints "$(ENDPOINTS)"

clean: ## remove models, build output and local conversation data (keeps .venv)
	rm -rf models/*.tar.gz build var results .pytest_cache

.PHONY: export-reviewed
export-reviewed: setup ## the review inbox's confirmed messages into data/nlu/reviewed.yml (every fifth: tests/data/nlu_reviewed_heldout.yml)
	@$(PY) -m weiquan.analytics.review export --endpoints "$(ENDPOINTS)"
