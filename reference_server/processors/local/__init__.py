"""The reference server as its own payment processor: test cards, hosted card entry."""
