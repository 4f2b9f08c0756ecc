{#- The index by 3-digit MSIC group, one row per series per group per month (macros/stage_iowrt.sql). -#}
{{ stage_iowrt('iowrt_3d', by_group=true) }}
