"""Stripe as the payment processor: charges, Checkout card entry, its events, catalog and mirror."""
