// Hostile inputs for the parsers of untrusted bytes, built in memory by the
// tests that use them (engine parser tests, the fuzzers' seeds, server tests
// that upload them), so that no opaque blob is committed. Each reproduces a
// finding of issue 15 against the readers as they were before memory
// budgets: the comment says what an unbounded parser would build.
#ifndef RWKV_TESTS_TESTING_HOSTILE_FILES_H_
#define RWKV_TESTS_TESTING_HOSTILE_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv::testing {

// A torch.save-style archive (zip with archive/data.pkl and
// archive/version) around `pickle`.
std::string PthWithPickle(std::string_view pickle);

// A .pth whose pickle is a list of `leaves` references to one chain of
// `depth` nested dicts, each keyed by the same `key_bytes`-long string (a
// memo reference, so the key is in the file once) and ending in an int,
// plus `padding` None objects that raise the flattener's old visit limit
// (2 x objects + 1024) so that every leaf is reached. An unbounded
// flattener builds a '.'-joined name of depth x (key_bytes + 1) bytes per
// leaf: NestedKeysNameBytes() in all.
struct NestedKeysSpec {
  size_t key_bytes = 0;
  int depth = 0;  // dicts in the chain (at most 31: the flattener's limit)
  size_t leaves = 0;
  size_t padding = 0;  // 0: just enough for every leaf to be visited
};
std::string NestedSharedKeysPth(const NestedKeysSpec& spec);
uint64_t NestedKeysNameBytes(const NestedKeysSpec& spec);

// Issue 15's state-upload bombs: ~2 MB asking for ~17 GB of names (the
// server process aborted on std::bad_alloc), and the 132 KB variant whose
// 1.3 GB of names the server held after answering with an error.
NestedKeysSpec SharedKeys2MBSpec();
NestedKeysSpec SharedKeys132KBSpec();

// A .pth whose pickle creates `values` None objects (each popped at once),
// so only the old count limit (16M objects of ~100 bytes) bounded it: 2
// bytes of file per object.
std::string ValueCountBombPth(size_t values);

// A .pth whose pickle builds one list of `pairs` (key, value) pairs and
// calls collections.OrderedDict on it `copies` times: each call copies
// 2 x pairs item pointers from ~8 bytes of file (the old limit was 16 x the
// pickle's size in items, i.e. 128 bytes of copies per byte).
std::string DictCopyBombPth(size_t pairs, size_t copies);

// A .safetensors file whose JSON header (`header_bytes` long) holds one
// valid empty tensor with, under an unknown key of its entry (which readers
// ignore), an array of empty objects
// ("{}," per 3 bytes): a JSON document tree costs ~80 bytes per 3 bytes of
// it (issue 15: a 60 MB upload reached 1.2 GB).
std::string SafetensorsHeaderBomb(size_t header_bytes);

// A World vocabulary (rwkv_vocab_v20230424.txt format) with the 256 byte
// tokens plus one token with id `id`: an id table sized by the largest id
// costs ~5 bytes per id for a file of ~3 KB.
std::string WorldVocabWithId(int32_t id);

// A tokenizer.json (byte-level BPE) with the 256 byte symbols, one token
// with id `id` and, under an unused top-level key, `padding_values` empty
// JSON objects (a document tree costs ~80 bytes per 3 bytes of them).
std::string BpeTokenizerJson(int32_t id, size_t padding_values);

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_HOSTILE_FILES_H_
