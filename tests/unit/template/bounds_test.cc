// Bounds for hostile templates (they come from pod annotations): size, nesting, steps, output,
// printf widths; and that error messages do not carry data values.
#include <gtest/gtest.h>

#include <string>

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
  const std::string out = Out("{{range 100000}}{{range 100000}}{{end}}{{end}}");
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

}  // namespace
}  // namespace strongroom::tmpl::testing
