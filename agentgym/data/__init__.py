"""Offline, seeded data: the fictional world (documents, questions, conversations) and loaders
for the public formats."""
