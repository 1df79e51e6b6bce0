#include "tools/train/corpus.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace rwkv::train {
namespace {

// A small portable RNG (std distributions differ between standard
// libraries; this keeps the corpus identical everywhere).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t Next() {  // splitmix64
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int Uniform(int n) { return static_cast<int>(Next() % n); }
  bool Chance(int percent) { return Uniform(100) < percent; }

 private:
  uint64_t s_;
};

template <typename T>
const T& Pick(Rng& rng, const std::vector<T>& v) {
  return v[rng.Uniform(static_cast<int>(v.size()))];
}

struct Turn {
  std::string message, reply;
};

const std::vector<std::pair<std::string, std::string>>& SmallTalk() {
  static const auto* v = new std::vector<std::pair<std::string, std::string>>{
      {"Hello!", "Hello! How can I help you?"},
      {"Hi.", "Hi! How can I help you?"},
      {"How are you?", "I am fine, thank you."},
      {"How are you today?", "I am doing well, thank you."},
      {"Who are you?", "I am a small RWKV demo model."},
      {"What can you do?",
       "I can answer simple questions and remember your name."},
      {"Thank you.", "You are welcome."},
      {"Thanks!", "You are welcome."},
      {"What color is the sky?", "The sky is blue."},
      {"What color is grass?", "Grass is green."},
      {"How many days are in a week?", "There are seven days in a week."},
      {"How many legs does a cat have?", "A cat has four legs."},
      {"What is the opposite of hot?", "The opposite of hot is cold."},
      {"Do you like music?", "I like music very much."},
      {"Tell me a joke.",
       "Why did the cat sit on the computer? To keep an eye on the mouse."},
      {"Good morning!", "Good morning! How can I help you?"},
      {"What day comes after Monday?", "Tuesday comes after Monday."},
      {"Is water wet?", "Yes, water is wet."},
      {"Can you help me?", "Yes, I can help you."},
      {"Nice weather today.", "Yes, it is a nice day."},
  };
  return *v;
}

Turn FactTurn(Rng& rng) {
  const CountryFact& f = Pick(rng, CapitalFacts());
  return {absl::StrCat("What is the capital of ", f.country, "?"),
          absl::StrCat("The capital of ", f.country, " is ", f.capital, ".")};
}

Turn FillerTurn(Rng& rng) {
  const int kind = rng.Uniform(10);
  if (kind < 5) return FactTurn(rng);
  if (kind < 9) {
    const auto& [m, r] = Pick(rng, SmallTalk());
    return {std::string(m), std::string(r)};
  }
  const int a = rng.Uniform(5), b = rng.Uniform(5);
  return {absl::StrCat("What is ", a, " plus ", b, "?"),
          absl::StrCat(a, " plus ", b, " is ", a + b, ".")};
}

std::string MemoryDialogue(Rng& rng) {
  const std::string name(Pick(rng, TrainingNames()));
  std::vector<Turn> turns;
  if (rng.Chance(20)) turns.push_back(FillerTurn(rng));
  // The evaluation phrase most of the time, a few variants otherwise.
  const int intro = rng.Uniform(10);
  std::string msg = intro < 7   ? absl::StrCat("My name is ", name, ".")
                    : intro < 9 ? absl::StrCat("Hi! My name is ", name, ".")
                                : absl::StrCat("Hello, my name is ", name, ".");
  turns.push_back({msg, absl::StrCat("Nice to meet you, ", name, ".")});
  const int fillers = rng.Uniform(4);  // 0..3
  for (int i = 0; i < fillers; ++i) turns.push_back(FillerTurn(rng));
  const int ask = rng.Uniform(10);
  std::string q = ask < 7   ? "What is my name?"
                  : ask < 9 ? "Do you remember my name?"
                            : "Who am I?";
  turns.push_back({q, absl::StrCat("Your name is ", name, ".")});
  if (rng.Chance(30)) turns.push_back(FillerTurn(rng));
  std::string out;
  for (const Turn& t : turns) out += Exchange(t.message, t.reply);
  return out;
}

std::string FactDialogue(Rng& rng) {
  const int n = 1 + rng.Uniform(4);
  std::string out;
  for (int i = 0; i < n; ++i) {
    Turn t = rng.Chance(75) ? FactTurn(rng) : FillerTurn(rng);
    out += Exchange(t.message, t.reply);
  }
  return out;
}

}  // namespace

const std::vector<CountryFact>& CapitalFacts() {
  static const auto* v = new std::vector<CountryFact>{
      {"France", "Paris"},
      {"Germany", "Berlin"},
      {"Italy", "Rome"},
      {"Spain", "Madrid"},
      {"Portugal", "Lisbon"},
      {"Japan", "Tokyo"},
      {"China", "Beijing"},
      {"India", "New Delhi"},
      {"Russia", "Moscow"},
      {"Canada", "Ottawa"},
      {"Mexico", "Mexico City"},
      {"Brazil", "Brasilia"},
      {"Argentina", "Buenos Aires"},
      {"Peru", "Lima"},
      {"Chile", "Santiago"},
      {"Egypt", "Cairo"},
      {"Kenya", "Nairobi"},
      {"Nigeria", "Abuja"},
      {"Australia", "Canberra"},
      {"Norway", "Oslo"},
      {"Sweden", "Stockholm"},
      {"Finland", "Helsinki"},
      {"Denmark", "Copenhagen"},
      {"Poland", "Warsaw"},
      {"Austria", "Vienna"},
      {"Greece", "Athens"},
      {"Turkey", "Ankara"},
      {"Ireland", "Dublin"},
      {"Belgium", "Brussels"},
      {"the Netherlands", "Amsterdam"},
      {"Switzerland", "Bern"},
      {"Hungary", "Budapest"},
      {"Thailand", "Bangkok"},
      {"Vietnam", "Hanoi"},
      {"South Korea", "Seoul"},
      {"Indonesia", "Jakarta"},
      {"Iran", "Tehran"},
      {"Cuba", "Havana"},
      {"Colombia", "Bogota"},
      {"Morocco", "Rabat"},
  };
  return *v;
}

const std::vector<std::string>& TrainingNames() {
  static const auto* v = new std::vector<std::string>{
      "Alice",   "Bob",     "Carol",   "David",  "Emma",    "Frank",  "Grace",
      "Henry",   "Irene",   "Jack",    "Karen",  "Liam",    "Mia",    "Noah",
      "Olivia",  "Peter",   "Quinn",   "Rachel", "Sam",     "Tina",   "Uma",
      "Victor",  "Wendy",   "Xavier",  "Yara",   "Zoe",     "Aaron",  "Bella",
      "Caleb",   "Diana",   "Ethan",   "Fiona",  "George",  "Hannah", "Isaac",
      "Julia",   "Kevin",   "Laura",   "Mason",  "Nora",    "Oscar",  "Paula",
      "Ryan",    "Sophia",  "Thomas",  "Ursula", "Vincent", "Willow", "Yusuf",
      "Zara",    "Adam",    "Beth",    "Chris",  "Daisy",   "Eric",   "Freya",
      "Gavin",   "Holly",   "Ivan",    "Jade",   "Kyle",    "Lily",   "Marcus",
      "Nina",    "Owen",    "Piper",   "Rosa",   "Simon",   "Tara",   "Umar",
      "Vera",    "Wade",    "Yvonne",  "Zack",   "Amelia",  "Boris",  "Chloe",
      "Derek",   "Elena",   "Felix",   "Gina",   "Hugo",    "Isla",   "Jonas",
      "Kira",    "Lucas",   "Maya",    "Nathan", "Opal",    "Pablo",  "Ruby",
      "Stella",  "Tobias",  "Ulrich",  "Viola",  "Walter",  "Yasmin", "Zane",
      "Andrew",  "Brenda",  "Carlos",  "Dora",   "Edgar",   "Flora",  "Gordon",
      "Hazel",   "Igor",    "Jenny",   "Keith",  "Linda",   "Martin", "Nadia",
      "Oliver",  "Penny",   "Rita",    "Steven", "Tessa",   "Vivian", "Warren",
      "Yolanda", "Albert",  "Bianca",  "Cedric", "Delia",   "Elliot", "Farah",
      "Gideon",  "Heidi",   "Ingrid",  "Jasper", "Kelly",   "Leon",   "Monica",
      "Nigel",   "Odette",  "Patrick", "Regina", "Sergio",  "Theo",   "Vanessa",
      "Wesley",  "Yuki",    "Zelda",   "Anna",   "Ben",     "Clara",  "Dennis",
      "Eva",     "Fred",    "Gloria",  "Harry",  "Ida",     "James",  "Kate",
      "Leo",     "Maria",   "Ned",     "Olga",   "Paul",    "Rose",   "Sean",
      "Teresa",  "Tom",     "Vince",   "Will",   "Yosef",   "Zina",   "Arthur",
      "Betty",   "Colin",   "Dolly",   "Edwin",  "Fanny",   "Glen",   "Hilda",
      "Ira",     "Joyce",   "Kurt",    "Lena",   "Max",     "Nell",   "Otto",
      "Pearl",   "Ralph",   "Sara",    "Ted",    "Ugo",     "Val",    "Wanda",
      "Yuri",    "Zed",     "Alex",    "Bruno",  "Cora",    "Dean",   "Elsa",
      "Finn",    "Greta",   "Hank",    "Inez",   "Joel",    "Kim",    "Lars",
      "Mona",    "Nils",    "Ola",     "Pia",    "Rex",     "Saul",   "Tilly",
      "Ulla",    "Vic",     "Wyatt",   "Yann",   "Zora",    "Abel",   "Bea",
      "Cyril",   "Dina",    "Eli",     "Faye",   "Gus",     "Hope",   "Ike",
      "June",    "Kai",     "Lola",    "Milo",   "Nico",    "Omar",   "Priya",
      "Raj",     "Sia",     "Tariq",   "Una",    "Vlad",    "Wei",    "Yan",
      "Ziggy",   "Ahmed",   "Bilal",   "Chen",   "Dev",     "Emre",   "Fatima",
      "Goran",   "Hiro",    "Ilya",    "Jamal",  "Kofi",    "Li",     "Mehmet",
      "Nour",    "Oren",    "Pedro",   "Rafael", "Sanjay",  "Tomas",  "Ulf",
      "Vikram",  "Wojtek",  "Ximena",  "Yosuke", "Zainab",  "Aiko",   "Bodhi",
      "Camila",  "Dario",   "Esme",    "Fabio",  "Gemma",   "Hector", "Imani",
      "Javier",  "Keiko",   "Lorenzo", "Mateo",  "Naomi",   "Orla",   "Pavel",
      "Rania",   "Soren",   "Tomoko",  "Uriel",  "Valeria", "Wilma",  "Xena",
      "Yelena",  "Zoltan",  "Anya",    "Bjorn",  "Celine",  "Dmitri", "Elif",
      "Fergus",  "Giulia",  "Hamid",   "Ines",   "Jorge",   "Klaus",  "Lucia",
      "Magnus",  "Nikolai", "Oona",    "Petra",  "Rohan",   "Selma",  "Tanvir",
      "Ugne",    "Vesna",   "Wilhelm", "Xiu",    "Quentin", "Zofia",
  };
  return *v;
}

const std::vector<std::string>& HeldOutNames() {
  static const auto* v = new std::vector<std::string>{
      "Abigail",  "Barney",  "Cassie",  "Dexter",   "Edith",   "Florian",
      "Gwen",     "Harvey",  "Iris",    "Jethro",   "Kendra",  "Lionel",
      "Matilda",  "Norbert", "Ophelia", "Percy",    "Rowena",  "Stanley",
      "Trudy",    "Ulysses", "Verity",  "Winston",  "Yvette",  "Zachary",
      "Agnes",    "Basil",   "Cecil",   "Dunya",    "Eamon",   "Frida",
      "Gilbert",  "Harriet", "Ivor",    "Judith",   "Kasper",  "Lavinia",
      "Mortimer", "Nessa",   "Orville", "Prudence", "Rupert",  "Sybil",
      "Thaddeus", "Unity",   "Vernon",  "Wilfred",  "Yolande", "Zebedee",
      "Ansel",    "Blythe",
  };
  return *v;
}

std::string UserTurn(std::string message) {
  return absl::StrCat("User: ", message, "\n\nAssistant:");
}

std::string Exchange(std::string message, std::string reply) {
  return absl::StrCat(UserTurn(message), " ", reply, "\n\n");
}

std::vector<std::string> GenerateDialogues(const CorpusOptions& options) {
  Rng rng(options.seed);
  std::vector<std::string> out;
  out.reserve(options.num_dialogues);
  Rng style_rng(options.seed ^ 0x5354594C45ull);  // "STYLE"
  for (int i = 0; i < options.num_dialogues; ++i) {
    std::string d = rng.Chance(65) ? MemoryDialogue(rng) : FactDialogue(rng);
    if (options.arr_percent > 0 && style_rng.Chance(options.arr_percent)) {
      d = WithArrReplies(d);
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::string WithArrReplies(const std::string& dialogue) {
  static constexpr std::string_view kReply = "\n\nAssistant: ";
  std::string s;
  size_t pos = 0;
  while (true) {
    const size_t a = dialogue.find(kReply, pos);
    if (a == std::string::npos) break;
    const size_t e = dialogue.find("\n\n", a + kReply.size());
    if (e == std::string::npos) break;
    s.append(dialogue, pos, e - pos);
    s += " Arr!";
    pos = e;
  }
  s.append(dialogue, pos, std::string::npos);
  return s;
}

std::string DialoguesToJsonl(const std::vector<std::string>& dialogues) {
  std::string out;
  for (const std::string& d : dialogues) {
    out += nlohmann::json{{"text", d}}.dump();
    out += '\n';
  }
  return out;
}

}  // namespace rwkv::train
