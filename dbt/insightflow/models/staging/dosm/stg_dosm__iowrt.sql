{#- The headline index, one row per series per month (macros/stage_iowrt.sql has the columns). -#}
{{ stage_iowrt('iowrt', seasonally_adjusted=true) }}
