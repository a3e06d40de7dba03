"""The authorization server's HTML: the consent page and the error page.

Plain HTML with one inline style sheet (the app's CSP allows inline styles, not scripts);
no external assets. Every value shown is escaped. The consent form carries only the
server-stored transaction id and the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Final

__all__ = ["SCOPE_DESCRIPTIONS", "consent_page", "error_page"]

SCOPE_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "mcp:tools": "List and call the demo server's tools",
    "mcp:admin": "Call tools that need elevated rights",
    "offline_access": "Stay connected (refresh tokens)",
}
"""What each scope lets the client do, as the consent page says it."""

_STYLE: Final = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.35rem;margin:0 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:1rem 0}
dt{font-weight:600}dd{margin:0;word-break:break-all}
ul{margin:.25rem 0 1rem;padding-left:1.25rem}
code{font-size:.9em;background:#eef0f4;padding:0 .25em;border-radius:4px}
.buttons{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;padding:.55rem 1.4rem;border-radius:8px;border:1px solid #aab;cursor:pointer;background:#fff}
button.allow{background:#2457d6;border-color:#2457d6;color:#fff}
.note{color:#5a6272;font-size:.9rem}
.error{border-left:4px solid #c62828;padding-left:1rem}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )


def consent_page(
    *,
    client_name: str | None,
    client_id: str,
    client_kind: str,
    scopes: Sequence[str],
    resource: str,
    redirect_uri: str,
    transaction_id: str,
    action: str = "/oauth/authorize",
) -> str:
    """The page asking the user to allow or deny a client's access (two submit buttons, one form)."""
    name = client_name or client_id
    items = "".join(
        f"<li><code>{escape(s)}</code> — {escape(SCOPE_DESCRIPTIONS.get(s, 'Access named by this scope'))}</li>"
        for s in scopes
    )
    kinds = {
        "metadata-document": "described by its client metadata document",
        "pre-registered": "pre-registered with this server",
    }
    origin_note = kinds.get(client_kind, "registered itself dynamically; its name is not verified")
    body = (
        f'<h1 data-testid="consent-title">Allow <span data-testid="consent-client">{escape(name)}</span>'
        " to access the demo MCP server?</h1>"
        f"<dl><dt>Client</dt><dd>{escape(name)}</dd>"
        f'<dt>Client ID</dt><dd><code data-testid="consent-client-id">{escape(client_id)}</code></dd>'
        f'<dt>Resource</dt><dd><code data-testid="consent-resource">{escape(resource)}</code></dd>'
        f"<dt>Returns to</dt><dd><code>{escape(redirect_uri)}</code></dd></dl>"
        f'<p>It asks for:</p><ul data-testid="consent-scopes">{items}</ul>'
        f'<p class="note">The client {escape(origin_note)}.</p>'
        f'<form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="transaction" value="{escape(transaction_id)}">'
        '<div class="buttons">'
        '<button class="allow" type="submit" name="decision" value="allow" data-testid="consent-allow">Allow</button>'
        '<button type="submit" name="decision" value="deny" data-testid="consent-deny">Deny</button>'
        "</div></form>"
    )
    return _document("Authorize access", body)


def error_page(title: str, detail: str) -> str:
    """A page naming what is wrong with an authorization request that cannot be sent back to the client."""
    body = (
        f'<div class="error"><h1 data-testid="oauth-error-title">{escape(title)}</h1>'
        f'<p data-testid="oauth-error-detail">{escape(detail)}</p></div>'
        '<p class="note">The application that sent you here cannot be told about this error safely, '
        "so nothing was sent back to it. Close this page and try again from the application.</p>"
    )
    return _document(title, body)
