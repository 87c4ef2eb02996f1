"""HTTP plumbing shared by every router: one transaction per request."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session


class TransactionalRoute(APIRoute):
    """Opens a session per request; commits before the response leaves, rolls back on error.

    An endpoint that *returns* an error response (e.g. a failed login) keeps its writes,
    so failure counters and audit rows survive; one that *raises* keeps nothing.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def transactional(request: Request) -> Response:
            session = request.app.state.sessionmaker()
            request.state.db = session
            try:
                response = await handler(request)
            except BaseException:
                await run_in_threadpool(_rollback_and_close, session)
                raise
            # One trip to the thread pool for commit and close (each trip costs a hand-off).
            await run_in_threadpool(_commit_and_close, session)
            return response

        return transactional


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _rollback_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


async def _db(request: Request) -> Session:
    # async: a plain ``def`` dependency costs every request a trip to the thread pool.
    session: Session = request.state.db
    return session


DbSession = Annotated[Session, Depends(_db)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
