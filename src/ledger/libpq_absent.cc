// libpq's client functions that the PostgreSQL store calls, without libpq:
// for the appliance, where libpq and the libraries it loads (Kerberos,
// LDAP, GnuTLS, ...: about 9 MB) do not fit the 96 MB VM's RAM disk. Built
// twice: as a static library linked instead of libpq with
// -DSPAMSINK_POSTGRES=OFF, and always as build/appliance/libpq.so.5, which
// image/build.sh puts in the appliance in place of Debian's libpq (the same
// binary then runs there without PostgreSQL).
// Nothing connects: PQconnectdbParams returns no connection, which the store
// reports as its open error; config/ refuses ledger.store = "postgresql"
// before that (ledger::PostgresSupportError), finding the stub by its
// marker spamsink_libpq_absent. The other functions are never reached
// without a connection and answer as libpq does for a null handle.
#include <libpq-fe.h>

namespace {
char kNoSupport[] =
    "this build has no PostgreSQL support (built with "
    "-DSPAMSINK_POSTGRES=OFF)\n";
char kEmpty[] = "";
}  // namespace

extern "C" {
// The marker config/ looks up (dlsym) to tell this stub from libpq.
__attribute__((visibility("default"))) int spamsink_libpq_absent() { return 1; }
PGconn* PQconnectdbParams(const char* const*, const char* const*, int) {
  return nullptr;
}
PGPing PQpingParams(const char* const*, const char* const*, int) {
  return PQPING_NO_ATTEMPT;
}
void PQfinish(PGconn*) {}
void PQreset(PGconn*) {}
ConnStatusType PQstatus(const PGconn*) { return CONNECTION_BAD; }
char* PQerrorMessage(const PGconn*) { return kNoSupport; }
int PQsocket(const PGconn*) { return -1; }
PGresult* PQexec(PGconn*, const char*) { return nullptr; }
PGresult* PQexecParams(PGconn*, const char*, int, const Oid*,
                       const char* const*, const int*, const int*, int) {
  return nullptr;
}
int PQsendQuery(PGconn*, const char*) { return 0; }
PGresult* PQgetResult(PGconn*) { return nullptr; }
int PQputCopyData(PGconn*, const char*, int) { return -1; }
int PQputCopyEnd(PGconn*, const char*) { return -1; }
ExecStatusType PQresultStatus(const PGresult*) { return PGRES_FATAL_ERROR; }
char* PQresultErrorMessage(const PGresult*) { return kNoSupport; }
int PQntuples(const PGresult*) { return 0; }
char* PQcmdTuples(PGresult*) { return kEmpty; }
char* PQgetvalue(const PGresult*, int, int) { return kEmpty; }
int PQgetisnull(const PGresult*, int, int) { return 1; }
void PQclear(PGresult*) {}
}
