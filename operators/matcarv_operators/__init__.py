"""Custom Airflow operators over the step table (``matcarv_aiops.pipeline.steps.STEPS``): one generic
``StepOperator`` runs any step, and the named ones add what really differs (what diagnostics log, the
audit failing the run on FAILURE)."""
