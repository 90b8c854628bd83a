"""The offline fictional world: a seeded knowledge base, its encyclopedia pages, multi-hop
questions and conversational sessions."""

from agentgym.data.world.generator import Document, World
from agentgym.data.world.questions import (
    Question,
    Session,
    SessionTurn,
    make_questions,
    make_sessions,
    normalize,
)

__all__ = [
    "Document",
    "Question",
    "Session",
    "SessionTurn",
    "World",
    "make_questions",
    "make_sessions",
    "normalize",
]
