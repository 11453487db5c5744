"""Persons involved in incidents (disaggregated: role, sex, age group, nationality) and the reports on them."""
