/*
 * files.c - what root makes, hands over and removes in directories that
 * others own or could change (see session.h).
 *
 * A session's directory is its user's, and a VM pool's is vm_user's: a
 * path string joined and looked up again later could meet a symbolic link
 * the user put there, and root would chown or remove what it points to.
 * So every step goes from a directory descriptor (mkdirat, openat with
 * O_NOFOLLOW, unlinkat, fchownat on a descriptor), and what root touches
 * is looked at with fstat first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session.h"

int sd_dir_at(int at, const char *name, mode_t mode)
{
	int fd;

	if (mkdirat(at, name, mode) == -1 && errno != EEXIST)
		return -errno;
	/* The configuration's own absolute paths may be links the admin
	 * made; a name below a directory of ours may not. */
	fd = openat(at, name,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | (at == AT_FDCWD ? 0 : O_NOFOLLOW));
	return fd == -1 ? -errno : fd;
}

int sd_root_dir(const char *path, mode_t mode)
{
	struct stat sb;
	int fd = sd_dir_at(AT_FDCWD, path, mode);

	if (fd < 0)
		return fd;
	if (fstat(fd, &sb) == -1 || sb.st_uid != 0 || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int sd_dir_remove(int at, const char *name)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), dfd;
	struct dirent *e;
	DIR *d;

	if (fd == -1)
		return -errno;
	dfd = dup(fd);
	d = dfd == -1 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd != -1)
			close(dfd);
	} else {
		/* Files only: a directory the user made stays, and so
		 * does this one then (rmdir below fails, and says so). */
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(fd, e->d_name, 0);
		closedir(d);
	}
	close(fd);
	return unlinkat(at, name, AT_REMOVEDIR) == -1 ? -errno : 0;
}

int sd_hand_socket(int dirfd, const char *name, uid_t owner, uid_t uid, gid_t gid)
{
	int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC), rc = 0;
	struct stat sb;

	if (fd == -1)
		return -errno;
	if (fstat(fd, &sb) == -1)
		rc = -errno;
	else if (!S_ISSOCK(sb.st_mode) || sb.st_uid != owner || sb.st_nlink != 1)
		rc = -EPERM;
	else if (fchownat(fd, "", uid, gid, AT_EMPTY_PATH) == -1)
		rc = -errno;
	close(fd);
	return rc;
}
