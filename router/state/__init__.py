"""Durable state: the store, sessions, bulk jobs and their leases, and the storage mapping."""
