"""Integrity signals (SPEC §4.13, issue 32): patterns that look like gaming — one phone
checking in a crowd (代签), a clerk crediting the same friend again and again, a photo filed
twice, a patrol faster than its route can be walked, a resident earning far above the
village — raised with their evidence to the village's review queue. Nothing is blocked or
reversed by a signal; people decide (dismiss, or confirm and use the ordinary tools).

Detection stays off the check-in's path: the devices of residents' own check-ins are noted
in memory and written in batches (devices.py); the rest reads the outbox messages the
changes already write, as the delivery worker dispatches them (detect.py), and a daily
sweep compares residents' earnings (outliers).
"""
