"""Patrol coordination, a module per subdomain: units (and their broker credentials), positions,
incidents and their timeline, dispatch, taskings, joint patrols and coverage (joint), the live
feed; pages and errors hold what several of them share. The parts of an incident are packages of
their own: evidence (chain of custody), people (persons involved, reports), liaison (pushes to
partner agencies)."""
