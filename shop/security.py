"""Security headers on every response, the session cookie's attributes and the API's CORS
policy, set in one place.

A small after-request hook rather than Flask-Talisman: the policy is a handful of constant
headers plus two that depend on the request's scheme (HSTS, the cookie's Secure flag), and
Talisman's defaults (redirecting to HTTPS, its own session settings) would fight the plain-HTTP
development server and the tests. The policy lives here and nowhere else.
"""
from __future__ import annotations

from flask import request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

# Every page is server-rendered with one stylesheet and no script, image host or frame:
# anything else the browser is asked to load is refused (and reported in its console).
CSP = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:",
    "font-src 'self'", "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'self'", "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Same-origin pages still see where a visitor came from (the cart's "back" redirect uses it).
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    # As helmet sends it: the old browsers' XSS auditor is off (it could be abused to blank out
    # parts of a page); the CSP above is what protects.
    "X-XSS-Protection": "0",
}
# The JSON API, for the workshop's frontend served from another origin (CORS_ORIGIN), with the
# reference backend's methods and headers. Credentials allowed, as there: the frontend sends a
# bearer token, never a cookie, but axios' withCredentials must not break it.
CORS_METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Content-Type", "Authorization", "X-Requested-With"]
HSTS = "max-age=31536000; includeSubDomains"


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def add_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app, settings) -> None:
    from flask_cors import CORS

    app.config.update(SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_HTTPONLY=True)
    # Only the configured origins get Access-Control-Allow-Origin; any other origin's preflight
    # is answered without it, which the browser takes as a refusal. HTML pages stay same-origin.
    CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)}}, supports_credentials=True,
         methods=CORS_METHODS, allow_headers=CORS_HEADERS)
    app.session_interface = SessionInterface()
    app.after_request(add_headers)
    if settings.trusted_proxies:
        # Behind a TLS-terminating proxy the scheme and client address come from its headers.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
