"""Accounts: registration, login, bearer tokens, profile, seller upgrade."""
from __future__ import annotations

import functools
from datetime import datetime, timedelta, timezone

import bcrypt
import jwt

from ..domain import NewUser, User
from ..errors import AuthenticationError, AuthorizationError, DuplicateError, NotFoundError
from .validation import EMAIL_RE, PASSWORD_RE, USERNAME_RE, Checker

class AuthService:
    def __init__(self, users, settings):
        self.users = users
        self.settings = settings

    @functools.cached_property
    def _dummy_hash(self) -> bytes:
        """Checked against when the username is unknown, at the cost real hashes have, so
        the answer takes as long whether or not the user exists."""
        return bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(self.settings.bcrypt_rounds))

    def register(self, data) -> tuple[User, str]:
        c = Checker(data)
        username = c.text("username", max_len=50, min_len=3, pattern=USERNAME_RE, strip_tags=True,
                          msg="Username must be 3-50 characters: letters, numbers and underscores")
        email = c.text("email", max_len=100, pattern=EMAIL_RE, strip_tags=True,
                       msg="Please provide a valid email address")
        password = data.get("password") if isinstance(data, dict) else None
        if not isinstance(password, str) or not (8 <= len(password) <= 128):
            c.fail("password", "Password must be between 8 and 128 characters long")
        elif not PASSWORD_RE.match(password):
            c.fail("password", "Password must contain at least one lowercase letter, one uppercase"
                               " letter, one number, and one special character (@$!%*?&)")
        first = c.text("first_name", required=False, max_len=50, strip_tags=True)
        last = c.text("last_name", required=False, max_len=50, strip_tags=True)
        c.done()
        if self.users.get_by_username(username):
            raise DuplicateError("Username already exists", field="username")
        if self.users.get_by_email(email.lower()):
            raise DuplicateError("Email already exists", field="email")
        user = self.users.create(NewUser(username=username, email=email.lower(),
                                         password_hash=self.hash_password(password),
                                         first_name=first, last_name=last))
        return user, self.issue_token(user.id)

    def login(self, data) -> tuple[User, str]:
        c = Checker(data)
        # As the reference validates it: a value that cannot be a username is a 400, not a 401.
        username = c.text("username", min_len=3, max_len=50,
                          msg="Username must be between 3 and 50 characters")
        if username is not None and not USERNAME_RE.match(username):
            c.fail("username", "Username can only contain letters, numbers, and underscores")
        password = data.get("password") if isinstance(data, dict) else None
        if not isinstance(password, str) or not password:
            c.fail("password", "Password is required")
        c.done()
        user = self.users.get_by_username(username)
        stored = user.password_hash.encode() if user else self._dummy_hash
        if not bcrypt.checkpw(password.encode()[:72], stored) or user is None:
            raise AuthenticationError("Invalid username or password")
        return user, self.issue_token(user.id)

    def hash_password(self, password: str) -> str:
        # bcrypt reads at most 72 bytes; truncating explicitly keeps newer bcrypt from raising.
        return bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(self.settings.bcrypt_rounds)).decode()

    def issue_token(self, user_id: int) -> str:
        now = datetime.now(timezone.utc)
        claims = {"userId": user_id, "iat": now, "exp": now + timedelta(hours=self.settings.jwt_expires_hours)}
        return jwt.encode(claims, self.settings.secret_key, algorithm="HS256")

    def verify_token(self, token: str) -> int:
        claims = None
        # The current key first, then the fallbacks: rotating SECRET_KEY logs nobody out.
        for key in self.settings.secret_keys:
            try:
                # Every token issued here expires; one without `exp` (or `iat`) was made elsewhere
                # and, signed, would be good forever.
                claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp", "iat"]})
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                break
        if claims is None:
            raise AuthenticationError("Invalid or expired token")
        user_id = claims.get("userId")
        if not isinstance(user_id, int) or isinstance(user_id, bool):
            raise AuthenticationError("Invalid or expired token")
        return user_id

    def find(self, user_id: int) -> User | None:
        return self.users.get_by_id(user_id)

    def profile(self, user_id: int) -> User:
        user = self.users.get_by_id(user_id)
        if user is None:
            raise NotFoundError("User not found")
        return user

    def require_seller(self, user_id: int) -> User:
        user = self.profile(user_id)
        if not user.is_seller:
            raise AuthorizationError("Seller account required to access this resource")
        return user

    def update_profile(self, user_id: int, data) -> User:
        c = Checker(data)
        changes = {}
        for key, limit in (("first_name", 50), ("last_name", 50)):
            if isinstance(data, dict) and key in data:
                value = c.text(key, required=False, max_len=limit, strip_tags=True)
                changes[key] = value or None
        if isinstance(data, dict) and data.get("email") is not None:
            email = c.text("email", max_len=100, pattern=EMAIL_RE, msg="Please provide a valid email address")
            if email:
                changes["email"] = email.lower()
        c.done()
        if "email" in changes:
            other = self.users.get_by_email(changes["email"])
            if other and other.id != user_id:
                raise DuplicateError("Email already exists", field="email")
        user = self.users.update_profile(user_id, changes)
        if user is None:
            raise NotFoundError("User not found")
        return user

    def upgrade_to_seller(self, user_id: int) -> User:
        user = self.users.set_seller(user_id, True)
        if user is None:
            raise NotFoundError("User not found")
        return user
