"""The AWS CDK app that deploys MatCarv AIOps to Amazon MWAA: one Construct per concern, composed by the
stacks in ``stacks.py``; ``app.build_app`` is the entry point for ``cdk synth`` and for the tests."""
