"""Escalation policies: an unacknowledged alert climbs the specification's four levels.

policy    the policies file (`escalation.yml`), validated with file:line errors; reloadable
store     acknowledgements, escalation progress and history in the monitor's state file
engine    `escalate(store, policies, now_ms, send)`: one round (plain functions over the store)
actions   level 1's automated responses (Celery pool restart, queue purge, cache, command)
runner    where the timer runs: the monitor's thread (embedded) or the app's Celery task
          (Alertmanager mode); how a level's notification is queued in the notifier's outbox
status    the level-4 customer notice (`status_notice`), for the banner and /status/
api       POST /api/v1/alerts/<fingerprint>/ack on the monitor's API

Acknowledging is `monitoring.acknowledge`. docs/escalation.md tells the whole story.
"""
