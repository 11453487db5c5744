"""Agencies, their users and signing in."""
