// The closure's C API (closure/include/porous_closure.h): table mode in plain C++, no Python.
//
// Answers equal closure.Closure.load(model_dir).query(..., mode="table") to the last bit: the
// per-cell code is csrc/table_core.h, the same source the Python module's table kernels are
// built from (same compiler and flags, setup.py), and the per-cell state follows closure/api.py
// step for step (new cells above the trigger, Ps over the window, clock, release, state).
//
// Layers: the extern "C" functions check their arguments (messages as the Python API words
// them), then hand the checked call to the handle's Engine under the handle's mutex: TableEngine
// (in process) here, MpiEngine (closure_open_mpi: the same checked calls forwarded to closure
// workers) in porous_closure_mpi.cpp, which builds libporous_closure_mpi from this file and its
// own.
//
// A failing call changes no state: everything that can fail (argument checks, allocations,
// file reads) happens before the first write to the state or to the caller's outputs.
#include "porous_closure.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sha256.h"
#include "table_core.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the table and state files are little-endian; this library reads them natively"
#endif

namespace {

// ---------------------------------------------------------------------------------------------
// errors

struct Failure {
  int code;
  std::string msg;
};

[[noreturn]] void fail(int code, std::string msg) { throw Failure{code, std::move(msg)}; }

thread_local std::string t_last_error;
thread_local int t_last_code = 0;

// Python's repr() of a float (shortest round-trip digits, 'e' notation below 1e-4 and from
// 1e16), so messages name values exactly as the Python API does.
std::string py_repr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[48];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s(buf);
  const bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  const size_t e = s.find('e');
  const int exp10 = std::atoi(s.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exp10 + 1;  // value = 0.digits x 10^decpt
  std::string r;
  if (decpt > -4 && decpt <= 16) {
    const int nd = (int)digits.size();
    if (decpt <= 0)
      r = "0." + std::string((size_t)-decpt, '0') + digits;
    else if (decpt >= nd)
      r = digits + std::string((size_t)(decpt - nd), '0') + ".0";
    else
      r = digits.substr(0, (size_t)decpt) + "." + digits.substr((size_t)decpt);
  } else {
    r = digits.substr(0, 1);
    if (digits.size() > 1) r += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    r += eb;
  }
  return neg ? "-" + r : r;
}

std::string str_i64(int64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "%" PRId64, v);
  return b;
}

std::string sys_error(const std::string& what) { return what + ": " + std::strerror(errno); }

// ---------------------------------------------------------------------------------------------
// files

constexpr char TABLE_MAGIC[8] = {'P', 'C', 'T', 'A', 'B', 'L', 'E', '\0'};
constexpr char STATE_MAGIC[8] = {'P', 'C', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr uint32_t TABLE_VERSION = 1, STATE_VERSION = 1;
constexpr size_t TABLE_HEADER = 256, STATE_HEADER = 128, DIGEST = 32;
constexpr const char* TABLE_EXPORT = "closure_table.bin";
constexpr const char* TABLE_H5 = "closure_table.h5";
constexpr const char* WEIGHTS = "model.pt";
constexpr double MAX_DT = 1.0;         // closure.api.MAX_DT
constexpr int64_t OMP_MIN = 1 << 18;   // as the module's table kernels: threads only beyond this
constexpr int64_t PREFETCH = 16;       // cells ahead whose state lines are fetched (general path)

std::vector<unsigned char> read_file(const std::string& path, const char* what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(CLOSURE_ERR_IO, sys_error(std::string(what) + " " + path));
  std::vector<unsigned char> data;
  unsigned char buf[1 << 16];
  size_t got;
  try {
    while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) data.insert(data.end(), buf, buf + got);
  } catch (...) {
    std::fclose(f);
    throw;
  }
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail(CLOSURE_ERR_IO, sys_error(std::string("reading ") + what + " " + path));
  return data;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// sha256 of a weights file, cached per (path, size, mtime) for this process (closure.files
// does the same for data files): a second open of the same model costs no re-hash
std::string weights_sha256(const std::string& path) {
  static std::mutex mu;
  static std::map<std::tuple<std::string, int64_t, int64_t, int64_t>, std::string> cache;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    fail(CLOSURE_ERR_IO, sys_error("weights file " + path + " (needed for the fingerprint)"));
  const auto key = std::make_tuple(path, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec,
                                   (int64_t)st.st_mtim.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  std::string hex;
  if (!capi::sha256_file(path, hex)) fail(CLOSURE_ERR_IO, sys_error("reading " + path));
  std::lock_guard<std::mutex> lock(mu);
  cache[key] = hex;
  return hex;
}

// Byte cursor over a file read whole; every read is bounds-checked.
struct Reader {
  const std::vector<unsigned char>& d;
  size_t at;
  const std::string& where;
  template <class T>
  T get() {
    if (at + sizeof(T) > d.size()) fail(CLOSURE_ERR_FORMAT, where + ": truncated");
    T v;
    std::memcpy(&v, d.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string text(size_t n) {
    if (at + n > d.size()) fail(CLOSURE_ERR_FORMAT, where + ": truncated");
    std::string s(reinterpret_cast<const char*>(d.data() + at), n);
    at += n;
    return s;
  }
  template <class T>
  void array(std::vector<T>& out, size_t n) {
    if (at + n * sizeof(T) > d.size()) fail(CLOSURE_ERR_FORMAT, where + ": truncated");
    out.resize(n);
    if (n) std::memcpy(out.data(), d.data() + at, n * sizeof(T));
    at += n * sizeof(T);
  }
};

// checks magic, the trailing sha256 of all bytes before it, the version and the header size
void check_envelope(const std::vector<unsigned char>& d, const char* magic, uint32_t version,
                    size_t header, const std::string& where, const char* kind) {
  if (d.size() < 16 || std::memcmp(d.data(), magic, 8) != 0)
    fail(CLOSURE_ERR_FORMAT, where + ": not a " + kind + " file (magic " +
                                 std::string(magic, 7) + " missing)");
  uint32_t v, h;
  std::memcpy(&v, d.data() + 8, 4);
  std::memcpy(&h, d.data() + 12, 4);
  if (v != version)
    fail(CLOSURE_ERR_FORMAT, where + ": " + kind + " format version " + std::to_string(v) +
                                 " is not supported (this library reads " +
                                 std::to_string(version) + ")");
  if (h != header || d.size() < header + DIGEST)
    fail(CLOSURE_ERR_FORMAT, where + ": malformed " + kind + " header");
  capi::Sha256 sh;
  sh.update(d.data(), d.size() - DIGEST);
  unsigned char dig[DIGEST];
  sh.digest(dig);
  if (std::memcmp(dig, d.data() + d.size() - DIGEST, DIGEST) != 0)
    fail(CLOSURE_ERR_FORMAT, where + ": checksum mismatch (the file is corrupt or truncated)");
}

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char ch : s)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  return true;
}

// Writes a file atomically, as closure.files.atomic_write: a temporary file beside the target
// (".NAME.XXXXXX.tmp"), fsynced, mode 0644, renamed over the target, the directory fsynced. A
// failure removes the temporary file and leaves the target as it was.
class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path) : path_(path) {
    const size_t slash = path.find_last_of('/');
    dir_ = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty()) fail(CLOSURE_ERR_ARGUMENT, "path = '" + path + "' names no file");
    tmp_ = dir_ + "/." + base + ".XXXXXX.tmp";
    const int fd = ::mkstemps(&tmp_[0], 4);
    if (fd < 0) fail(CLOSURE_ERR_IO, sys_error("cannot create a temporary file in " + dir_));
    f_ = ::fdopen(fd, "wb");
    if (!f_) {
      const int e = errno;
      ::close(fd);
      ::unlink(tmp_.c_str());
      errno = e;
      fail(CLOSURE_ERR_IO, sys_error("cannot write " + tmp_));
    }
  }
  ~AtomicFile() {
    if (f_) std::fclose(f_);
    if (!done_) ::unlink(tmp_.c_str());
  }
  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n) fail(CLOSURE_ERR_IO, sys_error("writing " + tmp_));
    sha_.update(p, n);
  }
  template <class T>
  void put(T v) { write(&v, sizeof v); }
  void zeros(size_t n) {
    const std::vector<unsigned char> z(n, 0);
    write(z.data(), n);
  }
  // appends the sha256 of everything written, then fsync + rename
  void commit() {
    unsigned char dig[DIGEST];
    sha_.digest(dig);
    if (std::fwrite(dig, 1, DIGEST, f_) != DIGEST || std::fflush(f_) != 0 ||
        ::fsync(::fileno(f_)) != 0)
      fail(CLOSURE_ERR_IO, sys_error("writing " + tmp_));
    std::FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) fail(CLOSURE_ERR_IO, sys_error("writing " + tmp_));
    ::chmod(tmp_.c_str(), 0644);
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail(CLOSURE_ERR_IO, sys_error("cannot rename " + tmp_ + " to " + path_));
    done_ = true;
    const int dfd = ::open(dir_.c_str(), O_RDONLY);
    if (dfd >= 0) {
      ::fsync(dfd);  // durable rename; skipped where directories cannot be fsynced
      ::close(dfd);
    }
  }

 private:
  std::string path_, dir_, tmp_;
  std::FILE* f_ = nullptr;
  bool done_ = false;
  capi::Sha256 sha_;
};

// ---------------------------------------------------------------------------------------------
// the response table (closure_table.bin, written by closure.capi.export_table)

struct Table {
  int64_t nP = 0, nT = 0;
  double dt_t = 0, env_lo = 0, env_hi = 0, threshold = 0, dt_meso = 0, p_trigger = 0,
         ps_window = 0;
  uint32_t flags = 0;
  std::string weights_sha, source_sha;
  std::vector<double> nodes, A, T, U;
};

Table load_table(const std::string& dir) {
  const std::string path = dir + "/" + TABLE_EXPORT;
  if (!file_exists(path))
    fail(CLOSURE_ERR_IO, path + ": no exported table (" + std::strerror(errno) +
                             "); export it: python -m closure table export " + dir);
  const auto d = read_file(path, "table");
  check_envelope(d, TABLE_MAGIC, TABLE_VERSION, TABLE_HEADER, path, "closure table export");
  Reader r{d, 16, path};
  Table t;
  t.weights_sha = r.text(64);
  t.source_sha = r.text(64);
  t.nP = r.get<int64_t>();
  t.nT = r.get<int64_t>();
  t.dt_t = r.get<double>();
  t.env_lo = r.get<double>();
  t.env_hi = r.get<double>();
  t.threshold = r.get<double>();
  t.dt_meso = r.get<double>();
  t.p_trigger = r.get<double>();
  t.ps_window = r.get<double>();
  t.flags = r.get<uint32_t>();
  if (!is_hex64(t.weights_sha) || !is_hex64(t.source_sha))
    fail(CLOSURE_ERR_FORMAT, path + ": malformed sha256 fields");
  if (t.flags != 0)
    fail(CLOSURE_ERR_FORMAT, path + ": flags " + std::to_string(t.flags) +
                                 " name tables this library does not read (update it)");
  if (t.nP < 2 || t.nT < 2 || t.nP > (1 << 24) || t.nT > (1 << 24) ||
      d.size() != TABLE_HEADER + 8 * (size_t)(t.nP + 3 * t.nP * t.nT) + DIGEST)
    fail(CLOSURE_ERR_FORMAT, path + ": malformed table (nP = " + str_i64(t.nP) +
                                 ", nT = " + str_i64(t.nT) + ", " + std::to_string(d.size()) +
                                 " bytes)");
  auto finite = [](double v) { return std::isfinite(v); };
  if (!(finite(t.dt_t) && t.dt_t > 0 && finite(t.dt_meso) && t.dt_meso > 0 &&
        finite(t.p_trigger) && t.p_trigger > 0 && t.ps_window >= 0 &&
        t.ps_window <= t.dt_meso && finite(t.env_lo) && finite(t.env_hi) &&
        t.env_lo <= t.env_hi && finite(t.threshold)))
    fail(CLOSURE_ERR_FORMAT, path + ": malformed scalars (dt, dt_meso, p_trigger, ps_window, "
                                    "envelope, threshold)");
  r.at = TABLE_HEADER;
  const size_t nPT = (size_t)(t.nP * t.nT);
  r.array(t.nodes, (size_t)t.nP);
  r.array(t.A, nPT);
  r.array(t.T, nPT);
  r.array(t.U, nPT);
  for (int64_t i = 0; i < t.nP; ++i)
    if (!std::isfinite(t.nodes[i]) || (i && !(t.nodes[i] > t.nodes[i - 1])))
      fail(CLOSURE_ERR_FORMAT, path + ": Ps nodes must be finite and increasing");
  for (const auto* v : {&t.A, &t.T, &t.U})
    if (!std::all_of(v->begin(), v->end(), finite))
      fail(CLOSURE_ERR_FORMAT, path + ": the table has non-finite values");
  // the fingerprint: the export belongs to these weights, and to the current HDF5 table
  const std::string w = weights_sha256(dir + "/" + WEIGHTS);
  if (w != t.weights_sha)
    fail(CLOSURE_ERR_MISMATCH,
         path + ": exported for weights sha256 " + t.weights_sha.substr(0, 12) + "..., but " +
             dir + "/" + WEIGHTS + " has " + w.substr(0, 12) +
             "...; export it again: python -m closure table export " + dir);
  const std::string h5 = dir + "/" + TABLE_H5;
  if (file_exists(h5)) {
    std::string hs;
    if (!capi::sha256_file(h5, hs)) fail(CLOSURE_ERR_IO, sys_error("reading " + h5));
    if (hs != t.source_sha)
      fail(CLOSURE_ERR_MISMATCH,
           path + " is stale: " + h5 + " changed since the export (sha256 " + hs.substr(0, 12) +
               "... != " + t.source_sha.substr(0, 12) +
               "...); export it again: python -m closure table export " + dir);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// per-cell state: sorted unique ids, one array per field (macro.cellstore.CellStore's layout,
// fields in closure.api's state_dict order), and per cell the Ps interval and weight of its
// lookups (pi, pf: ck::lerp_index of its stored ps, or pi = -1 when not known yet). Ps is frozen
// once a cell is older than the Ps window, and so are these: kept, they save the search and a
// division per lookup, with the same bits. They are not state (not saved; rebuilt on demand).

struct Cells {
  std::vector<int64_t> ids;
  std::vector<double> ps, t;
  std::vector<int64_t> steps;
  std::vector<double> frac;
  std::vector<int64_t> rng;
  std::vector<int32_t> pi;
  std::vector<double> pf;
  size_t size() const { return ids.size(); }
  void resize(size_t n) {
    ids.resize(n);
    ps.resize(n);
    t.resize(n);
    steps.resize(n);
    frac.resize(n);
    rng.resize(n);
    pi.resize(n, -1);
    pf.resize(n);
  }
  void move(size_t from, size_t to) {
    ids[to] = ids[from];
    ps[to] = ps[from];
    t[to] = t[from];
    steps[to] = steps[from];
    frac[to] = frac[from];
    rng[to] = rng[from];
    pi[to] = pi[from];
    pf[to] = pf[from];
  }
};

// ---------------------------------------------------------------------------------------------
// what a handle runs its checked calls on

struct Query {
  int64_t n;
  const int64_t* ids;
  const double* p;
  const double* dt;
  bool dt_scalar;
  bool ids_sorted;  // strictly increasing
  closure_outputs out;  // all NULL when the caller passed none
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual bool has_burned_fraction() const = 0;
  virtual void query(const Query& q) = 0;
  virtual void release(int64_t n, const int64_t* ids) = 0;
  virtual void save_state(const std::string& path) = 0;
  virtual void load_state(const std::string& path) = 0;
  virtual int64_t n_cells() const = 0;
};

class TableEngine final : public Engine {
 public:
  explicit TableEngine(Table tab) : tab_(std::move(tab)) {}

  bool has_burned_fraction() const override { return false; }
  int64_t n_cells() const override { return (int64_t)cells_.size(); }

  void query(const Query& q) override {
    const int64_t n = q.n, m = (int64_t)cells_.size();
    if (n == 0) return;
    if (n == m && std::equal(q.ids, q.ids + n, cells_.ids.begin())) {
      steady(q);
      return;
    }
    general(q);
  }

  void release(int64_t n, const int64_t* ids) override {
    const size_t m = cells_.size();
    if (n == 0 || m == 0) return;
    gone_.assign(m, 0);  // the only allocation, before any change
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) {
      auto it = std::lower_bound(cells_.ids.begin(), cells_.ids.end(), ids[i]);
      if (it != cells_.ids.end() && *it == ids[i]) {
        const size_t at = (size_t)(it - cells_.ids.begin());
        k += !gone_[at];
        gone_[at] = 1;
      }
    }
    if (k == 0) return;
    size_t j = 0;
    for (size_t i = 0; i < m; ++i)
      if (!gone_[i]) cells_.move(i, j++);
    cells_.resize(j);
    ++version_;
  }

  void save_state(const std::string& path) override {
    AtomicFile f(path);
    const int64_t n = (int64_t)cells_.size();
    f.write(STATE_MAGIC, 8);
    f.put<uint32_t>(STATE_VERSION);
    f.put<uint32_t>((uint32_t)STATE_HEADER);
    f.write(tab_.weights_sha.data(), 64);
    f.put<double>(tab_.dt_meso);
    f.put<int64_t>(n);
    f.zeros(STATE_HEADER - 96);
    f.write(cells_.ids.data(), 8 * (size_t)n);
    f.write(cells_.ps.data(), 8 * (size_t)n);
    f.write(cells_.t.data(), 8 * (size_t)n);
    f.write(cells_.steps.data(), 8 * (size_t)n);
    f.write(cells_.frac.data(), 8 * (size_t)n);
    f.write(cells_.rng.data(), 8 * (size_t)n);
    f.commit();
  }

  void load_state(const std::string& path) override {
    const auto d = read_file(path, "state file");
    check_envelope(d, STATE_MAGIC, STATE_VERSION, STATE_HEADER, path, "closure state");
    Reader r{d, 16, path};
    const std::string sha = r.text(64);
    const double dtm = r.get<double>();
    const int64_t n = r.get<int64_t>();
    if (sha != tab_.weights_sha)
      fail(CLOSURE_ERR_MISMATCH, path + ": saved with a different model (weights_sha256 " +
                                     sha.substr(0, 12) + "... != " +
                                     tab_.weights_sha.substr(0, 12) + "...)");
    if (!(std::fabs(dtm - tab_.dt_meso) <= 1e-12 * std::fabs(tab_.dt_meso)))
      fail(CLOSURE_ERR_MISMATCH, path + ": dt_meso " + py_repr(dtm) + " != model " +
                                     py_repr(tab_.dt_meso));
    if (n < 0 || d.size() != STATE_HEADER + 48 * (size_t)n + DIGEST)
      fail(CLOSURE_ERR_FORMAT, path + ": malformed state (n = " + str_i64(n) + ", " +
                                   std::to_string(d.size()) + " bytes)");
    Cells c;
    r.at = STATE_HEADER;
    r.array(c.ids, (size_t)n);
    r.array(c.ps, (size_t)n);
    r.array(c.t, (size_t)n);
    r.array(c.steps, (size_t)n);
    r.array(c.frac, (size_t)n);
    r.array(c.rng, (size_t)n);
    c.pi.assign((size_t)n, -1);
    c.pf.assign((size_t)n, 0.0);
    for (int64_t i = 1; i < n; ++i)
      if (!(c.ids[i] > c.ids[i - 1]))
        fail(CLOSURE_ERR_FORMAT, path + ": ids must be strictly increasing: ids[" +
                                     str_i64(i) + "] = " + str_i64(c.ids[i]) + " after ids[" +
                                     str_i64(i - 1) + "] = " + str_i64(c.ids[i - 1]));
    for (int64_t i = 0; i < n; ++i) {
      const char* bad = nullptr;
      double v = 0;
      if (!(std::isfinite(c.ps[i]) && c.ps[i] >= 0)) {
        bad = "ps";
        v = c.ps[i];
      } else if (!(std::isfinite(c.t[i]) && c.t[i] >= 0)) {
        bad = "t";
        v = c.t[i];
      } else if (!(c.frac[i] >= 0 && c.frac[i] < 1)) {
        bad = "frac";
        v = c.frac[i];
      }
      if (bad)
        fail(CLOSURE_ERR_FORMAT, path + ": " + bad + "[" + str_i64(i) + "] = " + py_repr(v) +
                                     " is out of range (ps, t finite and >= 0; frac in [0, 1))");
      if (c.steps[i] < 0 || c.rng[i] < 0)
        fail(CLOSURE_ERR_FORMAT, path + ": steps and rng must be >= 0 (cell " + str_i64(i) + ")");
    }
    std::swap(cells_, c);
    ++version_;
  }

 private:
  // The table and a call's outputs as local restrict pointers: the loops' stores (outputs, state)
  // then cannot alias the table, so its pointers and constants stay in registers.
  struct Lut {
    const double* __restrict nd;
    const double* __restrict A;
    const double* __restrict T;
    const double* __restrict U;
    int64_t nP, nT;
    double dt_t, lo, hi;
    // the Ps interval and weight of a cell: kept ones while its Ps is frozen (age t0 past the
    // window and known), else found (and kept)
    void index(double ps, double t0, double win, int32_t& ki, double& kf, int64_t& i,
               double& f) const {
      if (t0 >= win && ki >= 0) {
        i = ki;
        f = kf;
        return;
      }
      ck::lerp_index(nd, nP, ps, i, f);
      ki = (int32_t)i;
      kf = f;
    }
    void operator()(int64_t i, double fp, double t0, double t1, double& rA, double& rT,
                    double& rU, double& rR) const {
      ck::lookup_at(i, fp, dt_t, nT, A, T, U, t0, t1, rA, rT, rU, rR);
    }
    int32_t status(double ps) const {
      return (ps < lo || ps > hi) ? CLOSURE_STATUS_OUTSIDE_ENVELOPE : CLOSURE_STATUS_OK;
    }
  };
  Lut lut() const {
    return {tab_.nodes.data(), tab_.A.data(), tab_.T.data(), tab_.U.data(), tab_.nP, tab_.nT,
            tab_.dt_t, tab_.env_lo, tab_.env_hi};
  }

  struct Out {
    double* __restrict A;
    double* __restrict T;
    double* __restrict R;
    double* __restrict U;
    int32_t* __restrict S;
    explicit Out(const closure_outputs& o)
        : A(o.hotspot_area_fraction), T(o.hotspot_temperature), R(o.reaction_rate),
          U(o.uncertainty), S(o.status) {}
    void put(int64_t i, double a, double t, double r, double u, int32_t s) const {
      if (A) A[i] = a;
      if (T) T[i] = t;
      if (R) R[i] = r;
      if (U) U[i] = u;
      if (S) S[i] = s;
    }
  };

  // The call's ids are exactly the stored cells in their order (a hydrocode's steady state):
  // clock, status and lookup in one pass over the state arrays, in place (Closure._table_steady).
  void steady(const Query& q) {
    const int64_t n = q.n;
    double* __restrict ps = cells_.ps.data();
    double* __restrict t = cells_.t.data();
    double* __restrict fr = cells_.frac.data();
    int64_t* __restrict st = cells_.steps.data();
    int32_t* __restrict pi = cells_.pi.data();
    double* __restrict pf = cells_.pf.data();
    const double* __restrict p = q.p;
    const double* __restrict dt = q.dt;
    const bool scalar = q.dt_scalar;
    const double dtm = tab_.dt_meso, win = tab_.ps_window;
    const Lut L = lut();
    const Out o(q.out);
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
    for (int64_t i = 0; i < n; ++i) {
      const double dn = scalar ? dt[0] : dt[i];
      double ps1, t1, fr1, A, T, U, R, fp;
      int64_t st1, ip;
      ck::advance_cell(ps[i], t[i], st[i], fr[i], p[i], dn, dtm, win, ps1, t1, st1, fr1);
      L.index(ps1, t[i], win, pi[i], pf[i], ip, fp);
      L(ip, fp, t[i], t1, A, T, U, R);
      ps[i] = ps1;
      t[i] = t1;
      st[i] = st1;
      fr[i] = fr1;
      o.put(i, A, T, R, U, L.status(ps1));
    }
  }

  // positions of the call's ids in the store and whether each is there; the last call's
  // answer is reused while the store and the ids are the same (a steady state in the caller's
  // own order)
  void locate(const Query& q) {
    const int64_t n = q.n, m = (int64_t)cells_.size();
    if (cache_version_ == version_ && (int64_t)cache_ids_.size() == n &&
        std::equal(q.ids, q.ids + n, cache_ids_.begin()))
      return;
    cache_version_ = ~uint64_t(0);  // invalid until filled
    cache_ids_.resize((size_t)n);
    pos_.resize((size_t)n);
    found_.resize((size_t)n);
    const int64_t* sid = cells_.ids.data();
    if (q.ids_sorted && n * 16 >= m) {  // one merge walk
      int64_t j = 0;
      for (int64_t i = 0; i < n; ++i) {
        while (j < m && sid[j] < q.ids[i]) ++j;
        pos_[i] = j;
        found_[i] = j < m && sid[j] == q.ids[i];
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t j = std::lower_bound(sid, sid + m, q.ids[i]) - sid;
        pos_[i] = j;
        found_[i] = j < m && sid[j] == q.ids[i];
      }
    }
    std::copy(q.ids, q.ids + n, cache_ids_.begin());
    cache_version_ = version_;
  }

  // Any other call (closure.api.Closure._query): known cells advance in place, cells above the
  // trigger without state are created, the others answer "not shocked".
  void general(const Query& q) {
    const int64_t n = q.n, m = (int64_t)cells_.size();
    locate(q);
    int64_t k = 0;
    for (int64_t i = 0; i < n; ++i) k += !found_[i] && q.p[i] > tab_.p_trigger;
    // every allocation before the first write
    slot_.resize((size_t)n);
    Cells next;
    if (k) {
      fresh_.resize((size_t)k);
      order_.resize((size_t)k);
      next.resize((size_t)(m + k));
    }
    for (int64_t i = 0, s = 0; i < n; ++i) slot_[i] = (!found_[i] && q.p[i] > tab_.p_trigger) ? s++ : -1;
    double* __restrict ps = cells_.ps.data();
    double* __restrict t = cells_.t.data();
    double* __restrict fr = cells_.frac.data();
    int64_t* __restrict st = cells_.steps.data();
    int32_t* __restrict pi = cells_.pi.data();
    double* __restrict pf = cells_.pf.data();
    const double dtm = tab_.dt_meso, win = tab_.ps_window, thr = tab_.threshold;
    const Lut L = lut();
    const Out o(q.out);
#pragma omp parallel for schedule(static) if (n > OMP_MIN)
    for (int64_t i = 0; i < n; ++i) {
      if (i + PREFETCH < n) {  // cells in the caller's order hit the state at random places
        const int64_t jp = pos_[i + PREFETCH];
        __builtin_prefetch(ps + jp, 1);
        __builtin_prefetch(t + jp, 1);
        __builtin_prefetch(fr + jp, 1);
        __builtin_prefetch(st + jp, 1);
        __builtin_prefetch(pi + jp, 1);
        __builtin_prefetch(pf + jp, 1);
      }
      const double dn = q.dt_scalar ? q.dt[0] : q.dt[i];
      const bool known = found_[i];
      if (!known && slot_[i] < 0) {
        o.put(i, 0.0, thr, 0.0, 0.0, CLOSURE_STATUS_NOT_SHOCKED);
        continue;
      }
      const int64_t j = pos_[i];
      // a new cell starts at age 0 with Ps = its pressure (closure.api: t_old 0, ps_old p)
      const double ps0 = known ? ps[j] : q.p[i], t0 = known ? t[j] : 0.0;
      const double fr0 = known ? fr[j] : 0.0;
      const int64_t st0 = known ? st[j] : 0;
      double ps1, t1, fr1, A, T, U, R, fp;
      int64_t st1, ip;
      ck::advance_cell(ps0, t0, st0, fr0, q.p[i], dn, dtm, win, ps1, t1, st1, fr1);
      int32_t no_pi = -1;
      double no_pf = 0.0;
      L.index(ps1, t0, win, known ? pi[j] : no_pi, known ? pf[j] : no_pf, ip, fp);
      L(ip, fp, t0, t1, A, T, U, R);
      if (known) {
        ps[j] = ps1;
        t[j] = t1;
        st[j] = st1;
        fr[j] = fr1;
      } else {
        Fresh& f = fresh_[(size_t)slot_[i]];
        f.id = q.ids[i];
        f.ps = ps1;
        f.t = t1;
        f.steps = st1;
        f.frac = fr1;
        f.pi = no_pi;
        f.pf = no_pf;
      }
      o.put(i, A, T, R, U, L.status(ps1));
    }
    if (!k) return;
    // insert the new cells in id order (CellStore.insert: the store stays sorted)
    for (int64_t s = 0; s < k; ++s) order_[s] = s;
    if (!q.ids_sorted)
      std::sort(order_.begin(), order_.end(),
                [this](int64_t a, int64_t b) { return fresh_[a].id < fresh_[b].id; });
    int64_t a = 0, b = 0;
    for (int64_t o = 0; o < m + k; ++o) {
      if (b >= k || (a < m && cells_.ids[a] < fresh_[order_[b]].id)) {
        next.ids[o] = cells_.ids[a];
        next.ps[o] = cells_.ps[a];
        next.t[o] = cells_.t[a];
        next.steps[o] = cells_.steps[a];
        next.frac[o] = cells_.frac[a];
        next.rng[o] = cells_.rng[a];
        next.pi[o] = cells_.pi[a];
        next.pf[o] = cells_.pf[a];
        ++a;
      } else {
        const Fresh& f = fresh_[order_[b++]];
        next.ids[o] = f.id;
        next.ps[o] = f.ps;
        next.t[o] = f.t;
        next.steps[o] = f.steps;
        next.frac[o] = f.frac;
        next.rng[o] = 0;
        next.pi[o] = f.pi;
        next.pf[o] = f.pf;
      }
    }
    std::swap(cells_, next);
    ++version_;
  }

  struct Fresh {
    int64_t id;
    double ps, t;
    int64_t steps;
    double frac;
    int32_t pi;
    double pf;
  };

  Table tab_;
  Cells cells_;
  uint64_t version_ = 0;  // changes whenever the set of stored ids does
  // scratch, kept between calls
  std::vector<int64_t> pos_, slot_, order_, cache_ids_;
  std::vector<uint8_t> found_, gone_;
  std::vector<Fresh> fresh_;
  uint64_t cache_version_ = ~uint64_t(0);
};

std::string default_model_dir() {
  Dl_info info;
  if (!::dladdr(reinterpret_cast<void*>(&closure_open), &info) || !info.dli_fname)
    fail(CLOSURE_ERR_IO, "cannot locate libporous_closure (dladdr) to find the shipped model");
  char* real = ::realpath(info.dli_fname, nullptr);
  std::string lib = real ? real : info.dli_fname;
  std::free(real);
  // <package>/lib/libporous_closure.so -> <package>/weights/default
  for (int up = 0; up < 2; ++up) {
    const size_t slash = lib.find_last_of('/');
    lib = slash == std::string::npos ? "." : lib.substr(0, slash);
  }
  return lib + "/weights/default";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the handle

struct closure {
  std::unique_ptr<Engine> engine;
  std::mutex mu;
  std::string last_error;
  int last_code = 0;
  std::vector<int64_t> sorted;  // scratch of the duplicate check
  std::vector<int64_t> checked;  // the last unsorted ids found unique (checked again for free)
};

namespace {

int record(closure_t* c, int code, const std::string& msg) {
  t_last_error = msg;
  t_last_code = code;
  if (c) {
    c->last_error = msg;
    c->last_code = code;
  }
  return code;
}

// Runs f(), turning failures into a code and a message on c and this thread.
template <class F>
int guarded(closure_t* c, F&& f) {
  try {
    f();
    return CLOSURE_OK;
  } catch (const Failure& e) {
    return record(c, e.code, e.msg);
  } catch (const std::bad_alloc&) {
    return record(c, CLOSURE_ERR_NOMEM, "out of memory");
  } catch (const std::exception& e) {
    return record(c, CLOSURE_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return record(c, CLOSURE_ERR_INTERNAL, "internal error");
  }
}

closure_t* need_handle(closure_t* c) {
  if (!c) fail(CLOSURE_ERR_ARGUMENT, "c is NULL (did closure_open fail?)");
  return c;
}

void need_ptr(const void* p, const char* name, const char* count, int64_t n) {
  if (!p)
    fail(CLOSURE_ERR_ARGUMENT, std::string(name) + " is NULL, but " + count + " = " +
                                   str_i64(n) + " values are needed");
}

// closure.api._check_finite: first any non-finite value, then the first out of range
void check_values(const double* a, int64_t n, bool scalar, const char* name, bool strict,
                  const char* unit) {
  // the common case in one pass the compiler vectorizes (NaN fails both comparisons)
  const double inf = HUGE_VAL;
  int64_t bad = 0;
  if (strict)
    for (int64_t i = 0; i < n; ++i) bad += !((a[i] > 0) & (a[i] < inf));
  else
    for (int64_t i = 0; i < n; ++i) bad += !((a[i] >= 0) & (a[i] < inf));
  if (!bad) return;
  const std::string rng = std::string("finite and ") + (strict ? ">" : ">=") + " 0 " + unit;
  auto where = [&](int64_t i) { return scalar ? std::string(name) : name + ("[" + str_i64(i) + "]"); };
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(a[i]))
      fail(CLOSURE_ERR_VALUE, where(i) + " = " + py_repr(a[i]) + " is not finite; " + name +
                                  " must be " + rng);
  for (int64_t i = 0; i < n; ++i)
    if (strict ? !(a[i] > 0) : !(a[i] >= 0))
      fail(CLOSURE_ERR_VALUE, where(i) + " = " + py_repr(a[i]) + " is out of range; " + name +
                                  " must be " + rng);
}

// macro.cellstore.check_ids: unique, the message naming the smallest repeated id's first two
// places; returns whether the ids are strictly increasing (then no sort was needed)
bool check_unique(closure_t* c, int64_t n, const int64_t* ids) {
  int64_t down = 0;  // one vectorizable pass: steps that are not increasing
  for (int64_t i = 1; i < n; ++i) down += ids[i] <= ids[i - 1];
  if (!down) return true;
  // a hydrocode passes the same ids in its own order every step: compare, don't sort again
  if ((int64_t)c->checked.size() == n && std::equal(ids, ids + n, c->checked.begin()))
    return false;
  auto& s = c->sorted;
  s.assign(ids, ids + n);
  std::sort(s.begin(), s.end());
  auto dup = std::adjacent_find(s.begin(), s.end());
  if (dup == s.end()) {
    c->checked.assign(ids, ids + n);
    return false;
  }
  const int64_t v = *dup;
  int64_t first = -1, second = -1;
  for (int64_t i = 0; i < n && second < 0; ++i)
    if (ids[i] == v) (first < 0 ? first : second) = i;
  fail(CLOSURE_ERR_VALUE, "cell_ids must be unique: cell_ids[" + str_i64(second) + "] = " +
                              str_i64(v) + " repeats cell_ids[" + str_i64(first) + "]");
}

std::string need_path(const char* path) {
  if (!path) fail(CLOSURE_ERR_ARGUMENT, "path is NULL");
  if (!*path) fail(CLOSURE_ERR_ARGUMENT, "path is empty");
  return path;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// the C API

extern "C" {

closure_t* closure_open(const char* model_dir) {
  closure_t* out = nullptr;
  guarded(nullptr, [&] {
    std::string dir = model_dir ? model_dir : default_model_dir();
    if (dir.empty()) fail(CLOSURE_ERR_ARGUMENT, "model_dir is empty (NULL: the shipped model)");
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      fail(CLOSURE_ERR_IO, "model_dir = '" + dir + "' is not a directory" +
                               (model_dir ? "" : " (the shipped default weights are not "
                                                 "installed)"));
    auto c = std::make_unique<closure>();
    c->engine = std::make_unique<TableEngine>(load_table(dir));
    out = c.release();
  });
  return out;
}

int closure_query(closure_t* c, int64_t n, const int64_t* cell_ids, const double* pressure,
                  const double* dt, int64_t n_dt, closure_outputs* out) {
  return guarded(c, [&] {
    need_handle(c);
    std::lock_guard<std::mutex> lock(c->mu);
    if (n < 0) fail(CLOSURE_ERR_ARGUMENT, "n = " + str_i64(n) + " is out of range; n must be >= 0");
    if (n_dt != 1 && n_dt != n)
      fail(CLOSURE_ERR_ARGUMENT, "dt must be a scalar (n_dt = 1) or have n = " + str_i64(n) +
                                     " values (n_dt = n), got n_dt = " + str_i64(n_dt));
    if (n) {
      need_ptr(cell_ids, "cell_ids", "n", n);
      need_ptr(pressure, "pressure", "n", n);
    }
    if (n_dt) need_ptr(dt, "dt", "n_dt", n_dt);
    if (out && out->burned_fraction && !c->engine->has_burned_fraction())
      fail(CLOSURE_ERR_UNSUPPORTED,
           "out->burned_fraction: this model has no burned_fraction output (its table holds "
           "the hotspot area fraction, hotspot temperature and uncertainty); pass NULL there");
    const bool scalar = n_dt == 1;
    check_values(pressure, n, false, "pressure", false, "Pa");
    check_values(dt, n_dt, scalar, "dt", true, "s");
    for (int64_t i = 0; i < n_dt; ++i)
      if (dt[i] > MAX_DT)
        fail(CLOSURE_ERR_VALUE, (scalar ? std::string("dt") : "dt[" + str_i64(i) + "]") + " = " +
                                    py_repr(dt[i]) + " is out of range; dt must be in (0, 1] s");
    Query q{n, cell_ids, pressure, dt, scalar, check_unique(c, n, cell_ids), closure_outputs{}};
    if (out) q.out = *out;
    c->engine->query(q);
  });
}

int closure_release(closure_t* c, int64_t n, const int64_t* cell_ids) {
  return guarded(c, [&] {
    need_handle(c);
    std::lock_guard<std::mutex> lock(c->mu);
    if (n < 0) fail(CLOSURE_ERR_ARGUMENT, "n = " + str_i64(n) + " is out of range; n must be >= 0");
    if (n) need_ptr(cell_ids, "cell_ids", "n", n);
    c->engine->release(n, cell_ids);
  });
}

int closure_save_state(closure_t* c, const char* path) {
  return guarded(c, [&] {
    need_handle(c);
    const std::string p = need_path(path);
    std::lock_guard<std::mutex> lock(c->mu);
    c->engine->save_state(p);
  });
}

int closure_load_state(closure_t* c, const char* path) {
  return guarded(c, [&] {
    need_handle(c);
    const std::string p = need_path(path);
    std::lock_guard<std::mutex> lock(c->mu);
    c->engine->load_state(p);
  });
}

const char* closure_last_error(const closure_t* c) {
  return c ? c->last_error.c_str() : t_last_error.c_str();
}

int closure_last_error_code(const closure_t* c) { return c ? c->last_code : t_last_code; }

void closure_close(closure_t* c) { delete c; }

int64_t closure_n_cells(const closure_t* c) {
  if (!c) return -1;
  std::lock_guard<std::mutex> lock(const_cast<closure_t*>(c)->mu);
  return c->engine->n_cells();
}

int closure_api_version(void) { return CLOSURE_API_VERSION; }

int closure_set_error(closure_t* c, int code, const char* message) {
  return record(c, code, message ? message : "");
}

}  // extern "C"
