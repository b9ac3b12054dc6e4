# The two commands a newcomer needs:  make demo  (the main job)  and  make test  (all tests).
SHELL := /bin/bash
ENV := source scripts/env.sh &&
# make demo ROBOT=aloha: the bimanual joint-space robot
ROBOT ?= sawyer

.PHONY: setup demo test lint bench clean lock

setup:            ## create .venv, install pinned dependencies, colcon build (idempotent)
	@bash scripts/setup.sh

demo: setup       ## simulated robot + default policy, end to end (ROBOT=sawyer | aloha)
	@$(ENV) python -m vla_bringup.demo --robot $(ROBOT)

test: setup       ## every test: unit, policy, data, launch, multi-process ROS, lint
	@$(ENV) python -m pytest src tests

lint: setup       ## ruff only
	@$(ENV) ruff check src

bench: setup      ## latency / throughput of every head (JSON)
	@$(ENV) vla bench

lock:             ## re-resolve requirements/*.in and rewrite requirements/constraints.txt
	@rm -rf /tmp/vla-lock && python3 -m venv /tmp/vla-lock && /tmp/vla-lock/bin/pip install -q \
	  -r requirements/core.in -r requirements/dev.in -r requirements/ros-jazzy.in -r requirements/ros-launch.in && \
	  { echo "# Exact versions of every Python dependency (pip constraints). Regenerate with: make lock"; \
	    /tmp/vla-lock/bin/pip freeze | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/'; } > requirements/constraints.txt

clean:            ## remove build products (keeps .venv)
	rm -rf build install log
