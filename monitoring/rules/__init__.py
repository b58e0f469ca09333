"""Prometheus-compatible rules: PromQL evaluation, rule files, alert lifecycle, rule tests.

Pure Python (no Django). Modules and their contracts (each module's docstring has the details):

- ``engine``: ``Engine(store).instant/range``, evaluation of the compiled tree (as
  Prometheus' ``engine.go``); ``expr``: ``parse_expr``, ``compile_expr``, ``check_supported``,
  the nodes; ``errors``: ``QueryError``, ``ParseError``, ``UnsupportedError``.
- ``functions``, ``quantile``, ``aggregations``, ``binops``: what the engine applies to
  evaluated operands (``functions.go``, ``quantile.go``, aggregations and operators).
- ``values``: result types (Scalar, String, Vector, Matrix); their API JSON is
  ``monitoring.monitor.api_json``'s.
- ``gofmt``: Go-compatible formatting and parsing (floats, durations, RFC 3339, quoting);
  ``gomath``: Go's float functions, bit for bit.
- ``loader``: ``load_rule_files`` / ``check_rule_files`` with ``file:line: problem`` errors, read
  with ``monitoring.configfile.Reader`` in promtool's words (raises its ``ConfigError``).
- ``alerting``: ``RecordingRule``, ``AlertingRule``, ``Alert`` (state, snapshot/restore).
- ``group``: ``RuleGroup.eval(t_ms, engine, store)``.
- ``template``: the Go text/template subset for labels and annotations.
- ``unittest``: ``main(argv)``, promtool's ``test rules`` for rule unit-test files.

The sample store they read is ``monitoring.tsdb.store.SampleStore``.
"""
