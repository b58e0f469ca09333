"""Prometheus-compatible rules: PromQL evaluation, rule files, alert lifecycle, rule tests.

Pure Python (no Django). Modules and their contracts (each module's docstring has the details):

- ``engine``: ``Engine(store).instant/range``, ``compile_expr``, ``check_supported``, errors.
- ``values``: result types (Scalar, String, Vector, Matrix) and the HTTP API JSON.
- ``loader``: ``load_rule_files`` / ``check_rule_files`` with ``file:line: problem`` errors.
- ``alerting``: ``RecordingRule``, ``AlertingRule``, ``Alert`` (state, snapshot/restore).
- ``group``: ``RuleGroup.eval(t_ms, engine, store)``.
- ``template``: the Go text/template subset for labels and annotations.
- ``unittest``: ``main(argv)``, promtool's ``test rules`` for rule unit-test files.

The sample store they read is ``monitoring.tsdb.store.SampleStore``.
"""
