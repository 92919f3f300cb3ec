"""A site's group-chat channels (webhook, WeCom and DingTalk robots): /sites/{site}/channels,
for an administrator or the site's duty officer."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status

from dashboard.channels import store
from dashboard.channels.models import SiteChannelIn, SiteChannelOut, site_channel_out
from dashboard.channels.saving import STAFF_DEFAULT_SEVERITY, created_or_updated, save_channel
from dashboard.deps import ConnDep
from dashboard.params import SITE_REGEX, IdPath
from dashboard.scope import ScopeDep, not_found
from kernel.accounts import Role
from kernel.i18n import N_

logger = logging.getLogger(__name__)

router = APIRouter(tags=["channels"])

SitePath = Annotated[str, Path(pattern=SITE_REGEX, description="Site id.")]


async def managed_site(site: SitePath, scope: ScopeDep, conn: ConnDep) -> str:
    """Dependency: the site in the path, if the caller is an admin or its duty officer."""
    role = scope.user.role
    if role not in (Role.ADMIN, Role.DUTY_OFFICER):
        raise HTTPException(status.HTTP_403_FORBIDDEN, N_("Only an administrator or the site's "
                                                          "duty officer can manage site channels"))
    scope.check_site(site)  # 403 for another site's duty officer
    if not await store.site_exists(conn, site):
        raise not_found(N_("Site"))
    return site


ManagedSite = Annotated[str, Depends(managed_site)]


@router.get("/sites/{site}/channels", response_model=list[SiteChannelOut])
async def list_site_channels(site: ManagedSite, conn: ConnDep) -> list[SiteChannelOut]:
    """The site's group-chat channels (admin or the site's duty officer)."""
    return [site_channel_out(channel)
            for channel in await store.list_channels(conn, None, site)]


@router.post("/sites/{site}/channels", response_model=SiteChannelOut,
             status_code=status.HTTP_201_CREATED,
             responses={200: {"model": SiteChannelOut, "description": "Updated"}})
async def add_site_channel(body: SiteChannelIn, site: ManagedSite, scope: ScopeDep,
                           conn: ConnDep, response: Response) -> SiteChannelOut:
    """Add a webhook/wecom/dingtalk robot for the site (201), or update it (200)."""
    channel, inserted = await save_channel(conn, scope.user, body, user_id=None, site_id=site,
                                           severity=STAFF_DEFAULT_SEVERITY)
    logger.info("user %s %s %s channel %s of site %s", scope.user.username,
                "added" if inserted else "updated", body.kind, channel.id, site)
    created_or_updated(response, inserted)
    return site_channel_out(channel)


@router.delete("/sites/{site}/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_site_channel(channel_id: IdPath, site: ManagedSite, scope: ScopeDep,
                              conn: ConnDep) -> Response:
    """Remove one of the site's channels."""
    if not await store.delete_site_channel(conn, channel_id, site):
        raise not_found(N_("Channel"))
    logger.info("user %s removed channel %d of site %s", scope.user.username, channel_id, site)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
