"""Payment processors behind one contract (:mod:`.contract`): ``local/`` and ``stripe/``.

Callers take the processor of a customer from :func:`.registry.processor_for` and talk to it through
:class:`.contract.PaymentProcessor`; none checks which processor it got.  Adding a processor is one new
folder here (its ``PaymentProcessor`` subclass, and its :class:`.registration.Registration`: its
settings, how its server-wide and per-organization instances are made, its event routes if it sends
events) and one entry in :data:`.registry.PROCESSORS`.
"""
