#!/bin/sh
# MWAA startup script (runs on every scheduler, worker and webserver before Airflow starts).
# The CDK stack passes the platform's settings as Airflow configuration options in the `aiops` section;
# MWAA exposes them as AIRFLOW__AIOPS__<NAME>. matcarv_aiops.settings reads AIOPS_<NAME>: export each.
for name in $(env | sed -n 's/^AIRFLOW__AIOPS__\([A-Z0-9_]*\)=.*/\1/p'); do
    eval "value=\${AIRFLOW__AIOPS__${name}}"
    export "AIOPS_${name}=${value}"
done
