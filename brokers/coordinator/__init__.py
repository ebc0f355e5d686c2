"""Coordinators a broker runs for clients: producer ids and consumer groups."""
