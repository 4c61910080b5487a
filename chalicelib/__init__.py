"""agentcron: serverless scheduling of AI-agent runs on AWS.

Layers (outermost first): ``app.py`` routes → ``api`` (one Blueprint per façade,
each with its own wire models and error envelope) → ``services`` (use cases) →
``domain`` (models, the cron engine, ports). ``adapters`` implement the ports
against AWS; ``agents`` run the user's agent. ``domain`` and ``services`` import
neither chalice nor boto3, so they run unchanged against fakes, moto or AWS.
"""
