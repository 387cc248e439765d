"""PrivexBot: a self-hostable, privacy-first, multi-tenant platform for document-grounded chatbots.

Plugins write ``from privex import hookimpl`` and never import pluggy.
"""

from privex.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
