/* docker-archive.h: a `docker save` tar archive as an ImageSource.
 *
 * The archive holds manifest.json ([{"Config": "<file>", "RepoTags":
 * ["name:tag"], "Layers": ["<dir>/layer.tar", ...]}]), the config JSON and
 * one tar per layer; Docker 25 and later also lay out an OCI image layout
 * inside it and make the classic names symlinks into blobs/sha256/. We read
 * the classic manifest.json form, which both contain, and synthesise an OCI
 * image manifest from it: the config descriptor and one layer descriptor per
 * member (digest and size of the member's bytes, media type tar, tar+gzip or
 * tar+zstd by its magic bytes), so the store treats the archive like any
 * other source. The archive is read with libarchive, never unpacked: one
 * pass at open hashes the members, fetch_blobs re-reads the archive and
 * streams the wanted members. Member names must stay inside the archive (no
 * "..", not absolute); counts and sizes are bounded. */
#pragma once

#include "common/base/error.h"
#include "images/oci/image-source.h"

#define DOCKER_ARCHIVE_MEMBERS_MAX 100000u
#define DOCKER_ARCHIVE_IMAGES_MAX 1024u
#define DOCKER_ARCHIVE_LINK_HOPS 8

/* Opens the archive at path (plain tar, or gzip-compressed) and picks the
 * image named name (a RepoTags entry, compared after normalisation:
 * "busybox" matches "busybox:latest"), or the only image when name is NULL.
 * Reads the whole archive once. Returns 0; -ENOENT (no file, no
 * manifest.json, no such image, missing member); -EINVAL (several images and
 * no name, a member path outside the archive); -EBADMSG (bad manifest.json,
 * corrupt archive); -EFBIG / -E2BIG (a member or the member count past its
 * bound). */
int docker_archive_source_new(const char *path, const char *name, ImageSource **ret, Error **err);

/* The first RepoTags entry of the chosen image (a docker-archive source
 * only), or NULL when it has none. Valid while s lives. */
const char *docker_archive_source_repo_tag(ImageSource *s);
