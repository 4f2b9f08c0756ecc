{#- Every landed version of the headline rows (tasks/insightflow/ingest/history.py), typed like stg_dosm__iowrt. -#}
{{ stage_iowrt('iowrt_history', versions=true) }}
