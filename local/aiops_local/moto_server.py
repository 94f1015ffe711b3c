"""moto_server with IAM enforcement as the local stack runs it: moto's own server, with its signature
check skipped for the services whose SigV4 signatures moto cannot recompute (``SIGNATURE_UNVERIFIABLE``;
their requests are still authenticated by key and authorised by policy), SSM documents deployed by
CloudFormation stored as text (``cloudformation.store_document_content_as_text``), and SQS's retention
check reading one attribute, not all of them per message (``moto_sqs.retention_check_reads_one_attribute``).
Local only.

    python local/aiops_local/moto_server.py -H 127.0.0.1 -p 5000
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: aiops_local's parent


def main(argv: list[str]) -> None:
    from moto.iam.access_control import IAMRequest
    from moto.server import main as moto_server

    from aiops_local.cloudformation import store_document_content_as_text
    from aiops_local.moto_iam import SIGNATURE_UNVERIFIABLE
    from aiops_local.moto_sqs import retention_check_reads_one_attribute

    store_document_content_as_text()
    retention_check_reads_one_attribute()

    verify_signature = IAMRequest.check_signature

    def check_signature(self: IAMRequest) -> None:
        if self._service not in SIGNATURE_UNVERIFIABLE:
            verify_signature(self)

    IAMRequest.check_signature = check_signature  # type: ignore[method-assign]
    moto_server(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
