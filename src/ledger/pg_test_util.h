// A private PostgreSQL cluster for tests: initdb into a fresh directory,
// one server listening only on a Unix socket in that directory (no TCP
// port, so parallel test binaries never collide), password authentication
// for a `spamsink` role. Run as the `postgres` user when the test runs as
// root (initdb refuses root), else as the test's own user. Stopped by pid.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace ledger::testing {

class PgCluster {
 public:
  static constexpr const char* kPassword = "fleet-test-secret";

  // The binaries of the newest installed server, or "" when none is.
  static std::string BinDir() {
    std::string best;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      auto bin = e.path() / "bin";
      if (std::filesystem::exists(bin / "initdb") &&
          std::filesystem::exists(bin / "postgres") && bin.string() > best) {
        best = bin.string();
      }
    }
    return best;
  }

  // One cluster per test binary, started on first use and stopped at exit.
  // Null when no server is installed (scripts/setup.sh installs one).
  static PgCluster* Shared() {
    static std::unique_ptr<PgCluster> c = [] {
      std::unique_ptr<PgCluster> p;
      if (BinDir().empty()) return p;
      p.reset(new PgCluster());
      if (!p->Init() || !p->Start()) p.reset();
      return p;
    }();
    return c.get();
  }

  ~PgCluster() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Starts the server (again); true once it accepts connections.
  bool Start() {
    if (pid_ > 0) return true;
    pid_ = Spawn({bin_ + "/postgres", "-D", dir_ + "/data", "-k", dir_, "-p",
                  "5432", "-c", "listen_addresses=", "-c", "fsync=off", "-c",
                  "synchronous_commit=off", "-c", "full_page_writes=off"});
    if (pid_ <= 0) return false;
    std::string ping = "host=" + dir_ + " port=5432 dbname=postgres";
    for (int i = 0; i < 1500; ++i) {  // at most 30 s
      if (PQping(ping.c_str()) == PQPING_OK) return true;
      int st;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Fast shutdown (SIGINT) of the server we started; waits for it.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    int st;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }

  // A connection string for a new, empty database (no password in it).
  // The single value of a query run on a fresh connection to url, or
  // "error: <message>".
  static std::string Scalar(const std::string& url, const std::string& sql) {
    PGconn* c = PQconnectdb((url + " password=" + kPassword).c_str());
    PGresult* r = PQexec(c, sql.c_str());
    std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1
                        ? PQgetvalue(r, 0, 0)
                        : "error: " + std::string(PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v;
  }
  std::string NewDatabase() {
    static std::atomic<int> n{0};
    std::string name =
        "t" + std::to_string(getpid()) + "_" + std::to_string(n++);
    PGconn* c =
        PQconnectdb((Url("postgres") + " password=" + kPassword).c_str());
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
      PGresult* r = PQexec(c, ("CREATE DATABASE " + name).c_str());
      ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
    EXPECT_TRUE(ok) << PQerrorMessage(c);
    PQfinish(c);
    return Url(name);
  }

  std::string Url(const std::string& db) const {
    return "host=" + dir_ + " port=5432 user=spamsink dbname=" + db;
  }
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

 private:
  PgCluster() = default;

  bool Init() {
    bin_ = BinDir();
    char tmpl[] = "/tmp/spamsink-pg-XXXXXX";
    if (!mkdtemp(tmpl)) return false;
    dir_ = tmpl;
    std::ofstream(dir_ + "/pw") << kPassword << "\n";
    if (geteuid() == 0) {
      passwd* pw = getpwnam("postgres");
      if (!pw) return false;
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (chown(dir_.c_str(), uid_, gid_) != 0 ||
          chown((dir_ + "/pw").c_str(), uid_, gid_) != 0) {
        return false;
      }
    }
    pid_t p = Spawn({bin_ + "/initdb", "-D", dir_ + "/data", "-U", "spamsink",
                     "--auth=scram-sha-256", "--pwfile=" + dir_ + "/pw", "-E",
                     "UTF8", "--no-sync"});
    int st = 0;
    return p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
  }

  // Runs argv as the cluster's owner, output appended to dir/log. The
  // child only makes async-signal-safe calls (the test may have threads).
  pid_t Spawn(const std::vector<std::string>& argv) {
    std::string log = dir_ + "/log";
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    bool demote = geteuid() == 0;
    pid_t p = fork();
    if (p != 0) return p;
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (demote && (setgid(gid_) != 0 || setuid(uid_) != 0)) _exit(126);
    prctl(PR_SET_PDEATHSIG, SIGINT);  // never outlive a crashed test
    execv(args[0], args.data());
    _exit(127);
  }

  std::string bin_, dir_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
};

}  // namespace ledger::testing
