{#- Every landed version of the by-group rows (tasks/insightflow/ingest/history.py), typed like stg_dosm__iowrt_3d. -#}
{{ stage_iowrt('iowrt_3d_history', by_group=true, versions=true) }}
