"""MatCarv AIOps shared core: catalogue, models, settings and AWS helpers.

Importable without Airflow: the trigger Lambda, the CLI and the CDK app use it too.
"""

METRIC_NAMESPACE = "AIOps/Automation"
METRIC_NAME = "RemediationExecuted"
