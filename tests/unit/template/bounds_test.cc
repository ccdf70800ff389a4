// Bounds for hostile templates (they come from pod annotations): size, nesting, steps, output,
// printf widths, memory and time budgets; and that error messages do not carry data values.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/unit/template/template_test_util.h"

namespace strongroom::tmpl::testing {
namespace {

std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out.append(s);
  return out;
}

TEST(TemplateBounds, TextLargerThanOneMebibyteIsRefused) {
  const std::string big(1 << 20, 'a');
  EXPECT_EQ(Out(big), big);
  EXPECT_EQ(Out(big + "a"), "ERROR: template: t: template text exceeds 1048576 bytes");
}

TEST(TemplateBounds, NestingOfControlStructuresIsCapped) {
  const std::string ok = Repeat("{{if 1}}", 100) + "x" + Repeat("{{end}}", 100);
  EXPECT_EQ(Out(ok), "x");
  const std::string deep = Repeat("{{if 1}}", 101) + "x" + Repeat("{{end}}", 101);
  EXPECT_EQ(Out(deep),
            "ERROR: template: t:1: nesting of actions and parentheses exceeds 100 levels");
}

TEST(TemplateBounds, NestingOfParenthesesIsCapped) {
  EXPECT_EQ(Out("{{" + Repeat("(", 100) + "1" + Repeat(")", 100) + "}}"), "1");
  EXPECT_EQ(Out("{{" + Repeat("(", 101) + "1" + Repeat(")", 101) + "}}"),
            "ERROR: template: t:1: nesting of actions and parentheses exceeds 100 levels");
}

TEST(TemplateBounds, VeryDeepNestingFailsWithoutExhaustingTheStack) {
  const std::string deep = Repeat("{{with .}}", 200000) + Repeat("{{end}}", 200000);
  EXPECT_EQ(Out(deep).substr(0, 6), "ERROR:");
  const std::string parens = "{{" + Repeat("(", 300000) + "}}";
  EXPECT_EQ(Out(parens).substr(0, 6), "ERROR:");
}

TEST(TemplateBounds, RecursionThroughTemplatesAndNestingIsCapped) {
  // Each call sits inside 90 nested `with`s: the executor's overall depth cap stops it before
  // the template depth cap, without running out of stack (also checked under ASan).
  const std::string text = "{{define \"R\"}}" + Repeat("{{with 1}}", 90) + "{{template \"R\" 1}}" +
                           Repeat("{{end}}", 90) + "{{end}}{{template \"R\" 1}}";
  const std::string out = Out(text);
  EXPECT_NE(out.find("execution nested deeper than 1000 levels"), std::string::npos) << out;
}

TEST(TemplateBounds, StepsAreLimited) {
  Options o;
  o.max_steps = 1000;
  EXPECT_EQ(Out("{{range .}}{{end}}", Json("[1,2,3]"), o), "");
  const std::string out = Out("{{range 1000000}}{{range 1000000}}{{end}}{{end}}", {}, o);
  EXPECT_NE(out.find("execution exceeded 1000 steps"), std::string::npos) << out;
}

TEST(TemplateBounds, DefaultStepLimitStopsQuadraticLoops) {
  Options o;  // the default steps; no deadline (a sanitizer build may take 10 s for 10M steps)
  o.max_duration = absl::InfiniteDuration();
  const std::string out = Out("{{range 100000}}{{range 100000}}{{end}}{{end}}", {}, o);
  EXPECT_NE(out.find("execution exceeded 10000000 steps"), std::string::npos) << out;
}

TEST(TemplateBounds, OutputIsLimited) {
  Options o;
  o.max_output_bytes = 100;
  EXPECT_EQ(Out(std::string(100, 'x'), {}, o), std::string(100, 'x'));
  EXPECT_EQ(Out("{{range 101}}x{{end}}", {}, o),
            "ERROR: template: t:1:13: executing \"t\" at <\"x\">: output exceeds 100 bytes");
}

TEST(TemplateBounds, DoublingAStringIsStoppedByTheOutputLimit) {
  Options o;
  o.max_output_bytes = 1 << 16;
  const std::string out =
      Out("{{$s := \"xxxxxxxx\"}}{{range 64}}{{$s = printf \"%s%s\" $s $s}}{{end}}", {}, o);
  EXPECT_NE(out.find("output exceeds 65536 bytes"), std::string::npos) << out;
}

TEST(TemplateBounds, HugePrintfWidthIsRefused) {
  // As Go: an absurd width consumes the rest of the format.
  EXPECT_EQ(Out("{{printf \"%99999999999d\" 1}}"), "%!(NOVERB)%!(EXTRA int=1)");
  EXPECT_EQ(Out("{{printf \"%.9999999999f\" 1.0}}"), "%!(NOVERB)%!(EXTRA float64=1)");
  Options o;
  o.max_output_bytes = 1000;
  EXPECT_NE(Out("{{printf \"%1000000d\" 1}}", {}, o).find("width exceeds the output limit"),
            std::string::npos);
  EXPECT_NE(Out("{{printf \"%.1000000f\" 1.0}}", {}, o).find("exceeds 1000 bytes"),
            std::string::npos);
  EXPECT_EQ(Out("{{printf \"%*d\" 2000000 1}}", {}, o), "%!(BADWIDTH)1");
}

TEST(TemplateBounds, ReplaceAllAndIndentCannotBlowUp) {
  Options o;
  o.max_output_bytes = 1000;
  EXPECT_NE(Out("{{replaceAll \"\" (printf \"%500s\" \"\") \"abcdef\"}}", {}, o).find("exceeds"),
            std::string::npos);
  EXPECT_NE(Out("{{indent 999 \"a\\nb\"}}", {}, o).find("exceeds"), std::string::npos);
}

TEST(TemplateBounds, DeeplyNestedDataIsRefusedWhenPrinted) {
  json::value v = json::array();
  for (int i = 0; i < 200; ++i) {
    json::array a;
    a.push_back(std::move(v));
    v = std::move(a);
  }
  EXPECT_NE(Out("{{.}}", v).find("nested too deeply"), std::string::npos);
  EXPECT_NE(Out("{{toJSON .}}", v).find("nested too deeply"), std::string::npos);
}

TEST(TemplateBounds, ErrorsDoNotContainSecretValues) {
  const json::value d = Json(R"({"k":"sk-live-SECRET","n":{"x":"sk-live-SECRET"}})");
  for (const char* t :
       {"{{range .k}}{{end}}", "{{.k.field}}", "{{toUpper .n}}", "{{eq .k 1}}",
        "{{base64Decode .k}}", "{{index .n.x 99}}", "{{lt .k .n}}", "{{add .k 1}}"}) {
    const std::string out = Out(t, d);
    EXPECT_EQ(out.substr(0, 6), "ERROR:") << t;
    EXPECT_EQ(out.find("SECRET"), std::string::npos) << t << " -> " << out;
  }
}

TEST(TemplateBounds, ExecutionErrorFormat) {
  Options o;
  o.error_on_missing_key = true;
  EXPECT_EQ(Out("line one\n{{ .Data.x }}", Json(R"({"Data":{}})"), o),
            "ERROR: template: t:2:3: executing \"t\" at <.Data.x>: map has no entry for key "
            "\"x\"");
  auto t = Template::Parse("api-keys", "a\nb\n{{ .Data } }}", {}, {});
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(), "template: api-keys:3: unexpected \"}\" in operand");
}

TEST(TemplateBounds, RepeatedExecutionIsIndependent) {
  auto t = Template::Parse("t", "{{$x := .}}{{range .}}{{$x = .}}{{end}}{{$x}}", {}, {});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t->Execute(Json("[1,2]"), {}), "2");
  EXPECT_EQ(*t->Execute(Json("[3]"), {}), "3");
}

// --- Memory and time budgets (Options::max_memory_bytes, max_duration; work in max_steps) ---

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Options where only the limit under test can stop a run.
Options Unbounded() {
  Options o;
  o.max_steps = UINT64_MAX;
  o.max_memory_bytes = SIZE_MAX;
  o.max_duration = absl::InfiniteDuration();
  return o;
}

TEST(TemplateBudget, Defaults) {
  const Options o;
  EXPECT_EQ(o.max_memory_bytes, size_t{64} << 20);
  EXPECT_EQ(o.max_duration, absl::Seconds(10));
  EXPECT_EQ(o.max_steps, 10'000'000u);
}

// The review's first case scaled down 64 times: 300 variables of 64 KiB each against 1 MiB.
// Each value is within max_output_bytes; their sum is not within the memory budget.
TEST(TemplateBudget, ManyBigVariablesExceedTheMemoryBudget) {
  auto vars = [](int n) {
    std::string text;
    for (int i = 0; i < n; ++i) text += absl::StrCat("{{$v", i, " := printf \"%65536s\" \"\"}}");
    return text;
  };
  Options o;
  o.max_memory_bytes = 1 << 20;
  // 15 strings of 64 KiB (and their formats) fit in 1 MiB, a 16th does not.
  EXPECT_EQ(Out(vars(15), {}, o), "");
  const std::string text = vars(300);
  auto r = Render(text, {}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  size_t pos = 0;
  for (int i = 0; i < 16; ++i) pos = text.find("printf", pos + 1);
  EXPECT_EQ(
      r.status().message(),
      absl::StrCat("template: t:1:", pos,
                   ": executing \"t\" at <printf \"%65536s\" \"\">: template uses more than 1 MiB "
                   "of memory"));
}

TEST(TemplateBudget, MemoryLimitIsNamedInTheMessage) {
  Options o;
  o.max_memory_bytes = 1000;
  EXPECT_EQ(Out("{{printf \"%2000s\" \"\"}}", {}, o),
            "ERROR: template: t:1:2: executing \"t\" at <printf \"%2000s\" \"\">: template uses "
            "more than 1000 bytes of memory");
  o.max_memory_bytes = 3 << 10;
  EXPECT_NE(Out("{{printf \"%4000s\" \"\"}}", {}, o).find("more than 3 KiB of memory"),
            std::string::npos);
}

// Every kind of value a template builds counts; the data given to Execute does not.
TEST(TemplateBudget, EveryBuiltValueIsCharged) {
  json::object d;
  d["s"] = std::string(4096, 'x');
  json::array a;
  for (int i = 0; i < 16; ++i) a.emplace_back(std::string(256, static_cast<char>('a' + i)));
  d["a"] = std::move(a);
  std::string j = "[";
  for (int i = 0; i < 400; ++i) j += i ? ",\"abcdefgh\"" : "\"abcdefgh\"";
  d["j"] = j + "]";
  json::object obj;
  for (int i = 0; i < 16; ++i) obj[std::string(255, 'k') + static_cast<char>('a' + i)] = i;
  d["o"] = std::move(obj);
  const json::value data(std::move(d));
  FunctionMap fns;
  fns["take"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    return json::value("");
  };
  fns["give"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    return json::value(std::string(4096, 'g'));
  };
  const std::string literal = "{{$x := \"" + std::string(1000, 'l') + "\"}}";
  const std::string cases[] = {
      "{{$x := printf \"%s\" $.s}}",
      "{{$x := print $.s}}",
      "{{$x := println $.s}}",
      "{{$x := slice $.s 1}}",
      "{{$x := slice $.a 1}}",
      "{{$x := parseJSON $.j}}",
      "{{$x := split \"x\" $.j}}",
      "{{$x := join \",\" $.a}}",
      "{{$x := html $.s}}",
      "{{$x := js $.s}}",
      "{{$x := urlquery $.s}}",
      "{{$x := toJSON $.a}}",
      "{{$x := toJSONPretty $.o}}",
      "{{$x := base64Encode $.s}}",
      "{{$x := toUpper $.s}}",
      "{{$x := trimSpace $.s}}",
      "{{$x := replaceAll \"x\" \"y\" $.s}}",
      "{{$x := indent 1 $.s}}",
      "{{range $k, $v := $.o}}{{end}}",  // range keys
      literal,                           // string constants
      "{{take $.s}}",                    // copies of the caller's function's arguments
      "{{$x := give}}",                  // the caller's function's results
  };
  for (const std::string& c : cases) {
    const std::string text = "{{range 100}}" + c + "{{end}}";
    EXPECT_EQ(Out(text, data, {}, fns), "") << c;  // default: 64 MiB
    Options o;
    o.max_memory_bytes = 64 << 10;
    EXPECT_NE(Out(text, data, o, fns).find("template uses more than 64 KiB of memory"),
              std::string::npos)
        << c << " -> " << Out(text, data, o, fns);
  }
  // Borrowing the data builds nothing.
  Options o;
  o.max_memory_bytes = 64 << 10;
  EXPECT_EQ(Out("{{range 1000}}{{$x := $.s}}{{$y := index $.a 3}}{{range $.a}}{{end}}{{end}}", data,
                o, fns),
            "");
}

// The review's second case scaled down: copying a big string in a loop is bounded by max_steps
// (a step per 64 bytes), where each iteration used to cost a few steps whatever it copied.
TEST(TemplateBudget, CopyingAndComparingCostSteps) {
  const json::value big = {{"big", std::string(64 << 10, 'x')},
                           {"big2", std::string(64 << 10, 'x')}};
  const json::value small = {{"big", "x"}, {"big2", "x"}};
  Options o = Unbounded();
  o.max_steps = 100000;
  const std::string copy = "{{$x := \"\"}}{{range 3001}}{{$x = printf \"%s\" $.big}}{{end}}";
  EXPECT_EQ(Out(copy, small, o), "");
  EXPECT_NE(Out(copy, big, o).find("execution exceeded 100000 steps"), std::string::npos);
  const std::string compare = "{{range 3001}}{{if eq $.big $.big2}}{{end}}{{end}}";
  EXPECT_EQ(Out(compare, small, o), "");
  EXPECT_NE(Out(compare, big, o).find("execution exceeded 100000 steps"), std::string::npos);
}

TEST(TemplateBudget, DeadlineStopsALongRender) {
  const json::value big = {{"big", std::string(64 << 10, 'x')}};
  Options o = Unbounded();
  o.max_duration = absl::Milliseconds(20);
  // About 100000 copies of 64 KiB (seconds) without the deadline.
  auto start = std::chrono::steady_clock::now();
  auto r = Render("{{$x := \"\"}}{{range 100000}}{{$x = printf \"%s\" $.big}}{{end}}", big, o);
  EXPECT_LT(Seconds(start), 2.0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("template ran longer than 20ms"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(r.status().message().substr(0, 14), "template: t:1:");
  // Cheap steps only: 300 million of them would take seconds.
  start = std::chrono::steady_clock::now();
  const std::string out = Out("{{range 300000000}}{{end}}", {}, o);
  EXPECT_LT(Seconds(start), 2.0);
  EXPECT_NE(out.find("template ran longer than 20ms"), std::string::npos) << out;
}

TEST(TemplateBudget, TimeInTheCallersFunctionsIsNotCounted) {
  FunctionMap fns;
  fns["slow"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return json::value("ok");
  };
  Options o;
  o.max_duration = absl::Milliseconds(100);
  // The clock is read every 1024 steps: the loop makes it read after the slow call.
  EXPECT_EQ(Out("{{slow}}{{range 3000}}{{end}}", {}, o, fns), "ok");
  o.max_duration = absl::ZeroDuration();
  EXPECT_NE(Out("{{slow}}{{range 3000}}{{end}}", {}, o, fns).find("template ran longer than 0"),
            std::string::npos);
}

// Substring searches (in, contains, split, replaceAll) take linear time: "aaa…ab" in "aaa…a"
// took |haystack| * |needle| steps with std::string_view::find (seconds here, minutes at 4 MiB).
TEST(TemplateBudget, SubstringSearchIsLinear) {
  const json::value d = {{"hay", std::string(1 << 20, 'a')},
                         {"needle", std::string(1 << 19, 'a') + "b"}};
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Out("{{in $.hay $.needle}}", d), "false");
  EXPECT_EQ(Out("{{contains $.needle $.hay}}", d), "false");
  EXPECT_EQ(Out("{{split $.needle $.hay | len}}", d), "1");
  EXPECT_EQ(Out("{{replaceAll $.needle \"\" $.hay | len}}", d), "1048576");
  EXPECT_LT(Seconds(start), 2.0);
}

// containsAny/All/None/NotAll compare every needle with every element: charged before.
TEST(TemplateBudget, QuadraticListComparisonIsRefusedBeforeTheWork) {
  const std::string lists =
      "{{$a := printf \"%40000s\" \"\" | replaceAll \" \" \"a,\" | split \",\"}}"
      "{{$b := printf \"%40000s\" \"\" | replaceAll \" \" \"b,\" | split \",\"}}";
  const auto start = std::chrono::steady_clock::now();
  for (const char* fn : {"containsAny", "containsAll", "containsNone", "containsNotAll"}) {
    const std::string out = Out(lists + "{{" + fn + " $b $a}}");
    EXPECT_NE(out.find("execution exceeded 10000000 steps"), std::string::npos) << out;
  }
  EXPECT_LT(Seconds(start), 2.0);
  EXPECT_EQ(Out("{{containsAll (split \",\" \"a,b\") (split \",\" \"b,c,a\")}}"), "true");
}

TEST(TemplateBudget, HtmlJsUrlqueryAreBoundedByTheOutputLimit) {
  Options o;
  o.max_output_bytes = 1000;
  const json::value d = {{"q", std::string(600, '"')}};
  for (const char* t : {"{{html .q}}", "{{js .q}}", "{{urlquery .q}}"}) {
    const std::string out = Out(t, d, o);
    EXPECT_NE(out.find("result exceeds 1000 bytes"), std::string::npos) << t << " -> " << out;
  }
}

// The template the engine exists for runs well within small budgets.
TEST(TemplateBudget, SeedTemplateIsUnaffected) {
  const std::string text =
      "{{- with secret \"secret/data/lobstack/api-keys\" -}}\n"
      "export ANTHROPIC_API_KEY=\"{{ .Data.data.anthropic_api_key }}\"\n"
      "export OPENAI_API_KEY=\"{{ .Data.data.openai_api_key }}\"\n"
      "export STRIPE_SECRET_KEY=\"{{ .Data.data.stripe_secret_key }}\"\n"
      "{{- end -}}\n";
  FunctionMap fns;
  fns["secret"] = [](std::span<const json::value>) -> absl::StatusOr<json::value> {
    return Json(R"({"Data":{"data":{"anthropic_api_key":"sk-a","openai_api_key":"sk-o",)"
                R"("stripe_secret_key":"sk_s"},"metadata":{"version":1}},"LeaseDuration":0,)"
                R"("LeaseID":"","Renewable":false,"Warnings":null})");
  };
  const std::string want =
      "export ANTHROPIC_API_KEY=\"sk-a\"\n"
      "export OPENAI_API_KEY=\"sk-o\"\n"
      "export STRIPE_SECRET_KEY=\"sk_s\"";
  EXPECT_EQ(Out(text, {}, {}, fns), want);
  Options tight;
  tight.max_memory_bytes = 1024;
  tight.max_steps = 100;
  tight.max_duration = absl::Milliseconds(100);
  EXPECT_EQ(Out(text, {}, tight, fns), want);
}

}  // namespace
}  // namespace strongroom::tmpl::testing
