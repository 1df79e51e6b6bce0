#include "tests/testing/hostile_files.h"

#include <cstdio>
#include <string>

#include "engine/zip_writer.h"

namespace rwkv::testing {
namespace {

// A few pickle protocol 2 opcodes, written by hand: the generators need
// shapes (memo references to one object from many places, popped objects)
// that PickleWriter, which mirrors CPython, never emits.
class Pickle {
 public:
  Pickle() { out_ = "\x80\x02"; }

  void Put(uint32_t index) {  // BINPUT / LONG_BINPUT
    if (index < 256) {
      out_ += 'q';
      out_ += static_cast<char>(index);
    } else {
      out_ += 'r';
      Le32(index);
    }
  }
  void Get(uint32_t index) {  // BINGET / LONG_BINGET
    if (index < 256) {
      out_ += 'h';
      out_ += static_cast<char>(index);
    } else {
      out_ += 'j';
      Le32(index);
    }
  }
  void String(std::string_view s) {  // BINUNICODE
    out_ += 'X';
    Le32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void Int(uint8_t v) {  // BININT1
    out_ += 'K';
    out_ += static_cast<char>(v);
  }
  void Op(char op) { out_ += op; }
  std::string Finish() {
    out_ += '.';
    return std::move(out_);
  }

 private:
  void Le32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_ += static_cast<char>(v >> (8 * i));
  }
  std::string out_;
};

constexpr char kEmptyDict = '}';
constexpr char kEmptyList = ']';
constexpr char kMark = '(';
constexpr char kSetItem = 's';
constexpr char kAppends = 'e';
constexpr char kNone = 'N';
constexpr char kPop = '0';
constexpr char kTuple1 = '\x85';
constexpr char kTuple2 = '\x86';
constexpr char kReduce = 'R';
constexpr char kAppend = 'a';

void AppendNonePadding(Pickle* p, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    p->Op(kNone);
    p->Op(kPop);
  }
}

// GPT-2's byte-level symbol of byte b, as UTF-8 (a JSON string may hold it
// raw).
std::string ByteLevelSymbol(int b) {
  auto printable = [](int x) {
    return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
  };
  int cp = b;
  if (!printable(b)) {
    int extra = 0;
    for (int x = 0; x < b; ++x) extra += printable(x) ? 0 : 1;
    cp = 256 + extra;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// JSON string literal of a byte-level symbol (escaping '"' and '\').
std::string JsonSymbol(int b) {
  const std::string s = ByteLevelSymbol(b);
  if (s == "\"" || s == "\\") return "\"\\" + s + "\"";
  return "\"" + s + "\"";
}

}  // namespace

std::string PthWithPickle(std::string_view pickle) {
  std::string out;
  engine::ZipWriter zip(&out);
  (void)zip.Add("archive/data.pkl", pickle);
  (void)zip.Add("archive/version", "3\n");
  (void)zip.Finish();
  return out;
}

std::string NestedSharedKeysPth(const NestedKeysSpec& spec) {
  Pickle p;
  // Memo 0: the key; memo 1..depth: the chain of dicts.
  p.String(std::string(spec.key_bytes, 'k'));
  p.Put(0);
  p.Op(kPop);
  for (int level = 1; level <= spec.depth; ++level) {
    p.Op(kEmptyDict);
    p.Put(level);
    p.Get(0);
    if (level == 1) {
      p.Int(1);
    } else {
      p.Get(level - 1);
    }
    p.Op(kSetItem);
    p.Op(kPop);
  }
  const size_t visits_per_leaf = static_cast<size_t>(spec.depth) + 2;
  const size_t padding = spec.padding != 0
                             ? spec.padding
                             : (spec.leaves * visits_per_leaf + 1) / 2;
  AppendNonePadding(&p, padding);
  p.Op(kEmptyList);
  p.Op(kMark);
  for (size_t i = 0; i < spec.leaves; ++i) p.Get(spec.depth);
  p.Op(kAppends);
  return PthWithPickle(p.Finish());
}

uint64_t NestedKeysNameBytes(const NestedKeysSpec& spec) {
  return uint64_t{spec.leaves} * static_cast<uint64_t>(spec.depth) *
         (spec.key_bytes + 1);
}

NestedKeysSpec SharedKeys2MBSpec() {
  // 9,200 leaves x 31 levels x 60,001 bytes = 17.1 GB of names; padded to
  // ~2 MB like the upload of the report.
  return NestedKeysSpec{60000, 31, 9200, 950000};
}

NestedKeysSpec SharedKeys132KBSpec() {
  // 2,700 leaves x 31 levels x 16,001 bytes = 1.34 GB of names from a
  // ~132 KB file.
  return NestedKeysSpec{16000, 31, 2700, 55000};
}

std::string ValueCountBombPth(size_t values) {
  Pickle p;
  AppendNonePadding(&p, values);
  p.Op(kEmptyDict);
  return PthWithPickle(p.Finish());
}

std::string DictCopyBombPth(size_t pairs, size_t copies) {
  Pickle p;
  // Memo 0: OrderedDict; memo 1: a pair; memo 2: the list of pairs.
  p.Op('c');
  for (char c : std::string_view("collections\nOrderedDict\n")) p.Op(c);
  p.Put(0);
  p.Op(kPop);
  p.String("k");
  p.Int(0);
  p.Op(kTuple2);
  p.Put(1);
  p.Op(kPop);
  p.Op(kEmptyList);
  p.Put(2);
  for (size_t i = 0; i < pairs; ++i) {
    p.Get(1);
    p.Op(kAppend);
  }
  p.Op(kPop);
  for (size_t i = 0; i < copies; ++i) {
    p.Get(0);
    p.Get(2);
    p.Op(kTuple1);
    p.Op(kReduce);
    p.Op(kPop);
  }
  p.Op(kEmptyDict);
  return PthWithPickle(p.Finish());
}

std::string SafetensorsHeaderBomb(size_t header_bytes) {
  std::string header =
      R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"pad":[)";
  const std::string tail = "{}]}}";
  while (header.size() + 3 + tail.size() <= header_bytes) header += "{},";
  header += tail;
  while (header.size() < header_bytes) header += ' ';
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) {
    file[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  }
  return file + header;
}

std::string WorldVocabWithId(int32_t id) {
  std::string out;
  char line[64];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(line, sizeof(line), "%d b'\\x%02x' 1\n", b + 1, b);
    out += line;
  }
  std::snprintf(line, sizeof(line), "%d 'ab' 2\n", id);
  return out + line;
}

std::string BpeTokenizerJson(int32_t id, size_t padding_values) {
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    vocab += JsonSymbol(b) + ":" + std::to_string(b) + ",";
  }
  vocab += "\"ab\":" + std::to_string(id);
  std::string padding = "[";
  for (size_t i = 0; i < padding_values; ++i) {
    padding += i == 0 ? "{}" : ",{}";
  }
  padding += "]";
  return R"({"version":"1.0","padding":)" + padding +
         R"(,"normalizer":null,"pre_tokenizer":{"type":"ByteLevel",)"
         R"("add_prefix_space":false},"decoder":{"type":"ByteLevel"},)"
         R"("model":{"type":"BPE","vocab":{)" +
         vocab + R"(},"merges":["a b"]}})";
}

}  // namespace rwkv::testing
