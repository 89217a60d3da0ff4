"""Everything temporal-bootstrap talks to, run locally on 127.0.0.1.

- `local_stack.stack.LocalStack` / `local_stack()`: the composed stack and its state file;
- `local_stack.mariadb`, `local_stack.aws`, `local_stack.temporal_servers`,
  `local_stack.chart_repository`: the parts, each usable alone as a test fixture;
- `python -m local_stack up|run|status|down`: the same from a shell.

Submodules are imported on demand so `python -m local_stack.<part>` stays quick.
"""
