"""What a network plug-in provides: an API client, a page normalizer and its defaults."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from socialsync.transform.records import NormalizedPage

if TYPE_CHECKING:
    from socialsync.extract.budget import RateBudget


@dataclass(frozen=True)
class ApiCredentials:
    """Where an API lives and how to authenticate; built from an Airflow connection at run time."""

    base_url: str
    token: str = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchedPage:
    """One API answer as received, with the request that produced it (never the credentials)."""

    kind: str  # profile | posts | comments
    parent_id: str  # the profile for profile/posts pages, the post for comments pages
    request: dict[str, Any]
    status_code: int
    payload: dict[str, Any]
    cursor: str | None  # the cursor this page was asked for with
    next_cursor: str | None  # where the next page starts; None on the last page
    item_count: int
    units: float = 1.0  # what the calls behind this page cost of the API's quota (a share of a shared call)
    # On a last page: the API serves no more of this list though it has more (TikTok's 1,000 comments).
    # The pass ends ``partial`` with this reason; its watermark still moves, so it is not walked daily.
    capped: str | None = None


@dataclass(frozen=True)
class PostStub:
    """What extract needs to know of a post to plan its comments and to stop paging."""

    post_id: str
    created_at: datetime | None
    comments_count: int | None


@dataclass(frozen=True)
class CommentHistory:
    """What the warehouse already holds of one post's comments, for a walk that may stop early.

    Given to ``comment_pages`` of a network whose comments are listed newest first with no time
    filter (``NetworkSpec.comments_stop_at_known``): the walk stops at the first page holding a
    known comment once the new comments and replies it found account for ``grown``, and skips the
    replies of threads whose reply count did not move. Such a pass proves no deletion.
    """

    grown: int  # comments and replies the post gained since its comments were last fetched in full
    known: Callable[[Sequence[str]], dict[str, int | None]]  # top-level ids held -> their stored reply count


@dataclass(frozen=True)
class PostsWalk:
    """One profile's part of a posts walk that queries many profiles at once (TikTok's video query)."""

    entity_id: str
    floor: datetime | None  # no need to look further back (None: a first sync or full refresh, as far as it goes)
    expected: int | None  # the profile's post count: a walk with no floor ends once it has seen that many


@dataclass(frozen=True)
class WalkStep:
    """What one answer of a grouped posts walk brought: a raw page per profile it had posts of, where
    the walk stands (JSON, saved on every member's job with the pages, to resume from), and the
    profiles whose walk ended with it: ``True`` when the walk saw every post the profile has (it
    proves the others gone), ``False`` when it stopped at its floor or horizon."""

    pages: list[FetchedPage]
    state: dict[str, Any]
    ended: dict[str, bool]


class GroupedPostsClient(Protocol):
    """A client whose API lists the posts of many profiles in one query (``NetworkSpec.posts_per_query``)."""

    def walk_posts(self, walks: Sequence[PostsWalk], state: dict[str, Any] | None,
                   as_of: datetime) -> Iterator[WalkStep]:
        """The posts of ``walks``' profiles newest first, from ``state`` (a saved step's) or from ``as_of``."""
        ...


@dataclass(frozen=True)
class RawPage:
    """A stored raw page handed back to a normalizer."""

    id: int
    kind: str
    parent_id: str
    payload: dict[str, Any]


class NetworkClient(Protocol):
    """A network's API client. Thread-safe: a task's workers share one, and with it one budget."""

    budget: RateBudget  # what every request asks first: in flight, per second, throttling, stops

    @property
    def requests(self) -> int:
        """Requests sent so far, retries included."""
        ...

    @property
    def max_list_items(self) -> int:
        """The longest profile list (followers, subscriptions) a walk may take on."""
        ...

    @property
    def full_list_days(self) -> int:
        """How often a newest-first list is walked to its end (the only walk that proves removals)."""
        ...

    @property
    def units(self) -> float:
        """Quota units those requests cost (what the API charges, refused calls included)."""
        ...

    @property
    def records(self) -> float:
        """Items the answers held, for an API whose quota counts them too (0 for one that does not)."""
        ...

    def fetch_profiles(self, entity_ids: Sequence[str]) -> list[FetchedPage]:
        """The profile pages of ``entity_ids`` (at most the spec's ``profiles_per_call``), one page
        per entity the API knows; an entity it does not know is absent. An error fails them all."""
        ...

    def post_pages(self, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]: ...

    def comment_pages(self, post_id: str, cursor: str | None,
                      history: CommentHistory | None = None) -> Iterator[FetchedPage]:
        """A post's comment pages from ``cursor``; ``history`` is given only to a network whose spec
        says its walks stop at known comments, and never under ``full_refresh``."""
        ...

    def list_pages(self, kind: str, entity_id: str, cursor: str | None) -> Iterator[FetchedPage]:
        """The pages of one of the profile lists the spec declares (``NetworkSpec.lists``), from ``cursor``."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Covers:
    """The rows of a normalized table a complete walk of a list holds all of: those whose ``column`` is
    the profile's id (a channel's subscriptions are the ``follows`` rows with it as ``follower_id``).

    A row leaves the list when a complete walk no longer holds it: it gets ``removed_at``; or, for a
    list that is a ``flag`` of rows kept for themselves (a profile's pinned posts: ``posts.pinned``),
    the flag turns False (the list's own rows carry it True).
    """

    table: str
    column: str
    flag: str | None = None


@dataclass(frozen=True)
class ProfileList:
    """A list under a profile besides its posts, walked after the posts as a sub-sync of its own:
    an account's live stories, a channel's subscriptions, a user's followers.

    Its pages are stored as raw pages of ``kind`` with the cursor after each, like posts pages. A list
    that ``covers`` rows proves, with a complete walk, the ones it no longer holds removed; one that
    covers none proves nothing gone (stories expire by design, so one missing from today's list is
    kept). A list ``bounded_by`` a profile count (``followers_count``) is walked only while that count
    is at most the connection's ``max_list_items``; above it the sub-sync is skipped with the count.
    """

    kind: str
    part: str  # the extract part (scope) that asks for it
    covers: Covers | None = None
    bounded_by: str | None = None
    # The API lists it newest first (TikTok's followers): a daily walk stops at the first page holding
    # an entry the warehouse has, and proves nothing removed; a complete walk, which does, runs when
    # the last one is older than the connection's ``full_list_days`` (default 7) and under full_refresh.
    newest_first: bool = False


def _serves_everything(entity_id: str) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Quota:
    """An API's quota: ``units`` per ``per`` (a day resets at midnight in ``timezone``).

    ``plan`` admits the profiles whose estimated cost fits what is left of the day (an hourly quota
    counts 24 periods a day); a connection extra ``quota_units`` overrides ``units`` for a deployment.
    """

    units: float
    per: timedelta = timedelta(days=1)
    timezone: str = "UTC"
    first_sync_units: float = 100.0  # the estimate for a profile never synced whose counts are not known
    records: float | None = None  # items the answers may hold per period, when the API counts those too
    # A first sync's cost per post of the profile (its pages, its comments): with the profile's post
    # count known (a profile page loaded earlier), a never-synced profile is estimated from it.
    units_per_post: float | None = None
    # What a first sync's walks of the profile's lists (followers, following) are expected to cost on
    # top; after it, a profile's estimate is what its last job really cost, lists included.
    list_units: float = 0.0

    def first_sync(self, posts_count: int | None) -> float:
        """What syncing a profile for the first time is expected to cost."""
        if posts_count is None or self.units_per_post is None:
            return self.first_sync_units + self.list_units
        return 1.0 + self.units_per_post * max(posts_count, 0) + self.list_units


@dataclass(frozen=True)
class NetworkSpec:
    """A network plug-in: the DAG factory, extract and transform only ever talk to this."""

    name: str
    api_conn_id: str
    connect: Callable[[ApiCredentials], NetworkClient]
    post_stubs: Callable[[dict[str, Any]], list[PostStub]]
    normalize: Callable[[RawPage], NormalizedPage]
    scopes: frozenset[str] = frozenset({"profile", "posts", "comments"})
    # What a valid profile id of this network looks like: conf ids that do not match are refused.
    entity_id_pattern: str = r"^[A-Za-z0-9_-]{1,128}$"
    schedule: str = "@daily"
    pool: str = ""
    pool_slots: int = 4
    # How many profiles one API call looks up (YouTube's channels.list takes 50 ids): extract asks
    # for a batch's profiles this many at a time.
    profiles_per_call: int = 1
    # How many profiles one posts query lists together (TikTok's video query takes 100 usernames):
    # above 1, the client is a ``GroupedPostsClient`` and a batch's posts are walked that many at once.
    posts_per_query: int = 1
    # Walk a recent post's comments again even when its count did not move (edits, likes): off for an
    # API whose daily requests are too few to spend on that (TikTok's 1,000).
    recheck_recent_comments: bool = True
    # The API lists comments newest first with no time filter (YouTube): an incremental walk stops at
    # the comments the warehouse holds (see ``CommentHistory``) and proves no deletion; a full
    # refresh walks every page.
    comments_stop_at_known: bool = False
    quota: Quota | None = None
    description: str = ""
    # Lists under a profile besides its posts, each walked as its own sub-sync.
    lists: tuple[ProfileList, ...] = ()
    # The parts (``comments``, a list's part) an entity's kind of account is not served, with why:
    # they end ``skipped`` with the reason (an Instagram account read through business discovery).
    unserved: Callable[[str], dict[str, str]] = _serves_everything
    # Why the network does not give a part it lacks (Instagram: counts only, no lists): the reason a
    # ``skipped`` sub-sync of that part says; without one, that the network does not expose it.
    not_given: Mapping[str, str] = field(default_factory=dict)
    # Posts of these product types are not on the posts edge (stories): a complete posts pass never
    # proves them gone.
    kept_product_types: frozenset[str] = frozenset()

    @property
    def dag_id(self) -> str:
        return f"{self.name}_sync"

    @property
    def pool_name(self) -> str:
        return self.pool or f"{self.name}_api"


class ApiError(Exception):
    """An API answered with an error; ``retryable`` says whether trying again can help."""

    def __init__(self, message: str, status: int | None = None, code: int | str | None = None,
                 retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        self.retry_after = retry_after

    @property
    def error_type(self) -> str:
        return type(self).__name__


class NotFoundError(ApiError):
    """The entity does not exist (or is no longer visible): a permanent failure of its job."""


class AuthError(ApiError):
    """The credentials were refused: every job would fail the same way."""


class ThrottledError(ApiError):
    """The API asked us to slow down; wait ``retry_after`` seconds before the next call."""


class QuotaExhaustedError(ThrottledError):
    """The API quota is used up for longer than a task should wait: stop, keep the cursor, resume later."""


class CursorExpiredError(ApiError):
    """A saved cursor is no longer accepted: paging must start again from the first page."""


class TransientError(ApiError):
    """5xx, timeouts, dropped connections, truncated bodies: worth another try."""


class PageAnomaly(ApiError):
    """An answer that cannot be proven to be a page, or paging that does not progress.

    Never retried in the task and never taken for the end of a pass: the sub-sync it belongs to
    ends ``partial`` with this reason, proves no deletion, moves no watermark, and is picked up
    again by the next run.
    """


class Unavailable(ApiError):
    """The API says this part has nothing to give (a video's comments are turned off): the sub-sync
    ends ``skipped`` with the reason, neither failed nor proof that anything is gone."""


class RedirectRefused(ApiError):
    """The API answered with a redirect: never followed, since it would carry the credentials."""
