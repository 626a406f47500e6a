"""Soom upsell: will a new free-plan sign-up upgrade to the paid plan within 90 days?

The reference bento of Rollforward and its demo. See README.md.
"""
