// --user: dropping root after binding, keeping CAP_NET_ADMIN alone when
// the packet-drop rule must be removed at exit.
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/commands.h"
#include "base/log.h"

namespace app {
namespace {

// After setuid, keeps CAP_NET_ADMIN alone: permitted and inheritable (not
// effective: the server itself never uses it) and ambient, so the `nft`
// run at exit (through sh) gets it in its effective set even under
// no_new_privs. Every other capability is gone.
base::Status KeepOnlyNetAdmin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].permitted = data[0].inheritable = 1u << CAP_NET_ADMIN;
  if (syscall(SYS_capset, &header, data) != 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0) {
    return base::Status::Error(std::strerror(errno));
  }
  return {};
}

}  // namespace

base::Status DropPrivileges(const std::string& user, bool keep_net_admin) {
  passwd* pw = getpwnam(user.c_str());
  if (!pw) return base::Status::Error("--user: no such user '" + user + "'");
  if (keep_net_admin) prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    return base::Status::Error("--user: cannot switch to '" + user +
                               "' (start as root to drop privileges)");
  }
  if (keep_net_admin) {
    auto kept = KeepOnlyNetAdmin();
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (!kept.ok()) {
      base::LogLine(base::LogLevel::kWarning, "keep_net_admin_failed")
          .Kv("error", kept.message())
          .Kv("hint",
              "the firewall rule stays at exit: spamsink firewall "
              "--delete | nft -f -");
    }
  }
  return {};
}

}  // namespace app
