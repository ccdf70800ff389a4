// Lexing and parsing: Go text/template's syntax (doc.go "Text and spaces", "Actions",
// "Arguments", "Pipelines", "Variables") and its parse errors.
#include <gtest/gtest.h>

#include "tests/unit/template/template_test_util.h"

namespace strongroom::tmpl::testing {
namespace {

TEST(TemplateTrim, LeftMarkerTrimsPrecedingSpace) { EXPECT_EQ(Out("a  \n\t{{- 1}}b"), "a1b"); }

TEST(TemplateTrim, RightMarkerTrimsFollowingSpace) { EXPECT_EQ(Out("a{{1 -}} \n\t b"), "a1b"); }

TEST(TemplateTrim, BothMarkers) { EXPECT_EQ(Out("{{23 -}} < {{- 45}}"), "23<45"); }

TEST(TemplateTrim, MarkerNeedsSpaceAfterDash) {
  // "{{-3}}" is the number -3, not a trim marker.
  EXPECT_EQ(Out("x {{-3}} y"), "x -3 y");
  EXPECT_EQ(Out("x {{- -3}} y"), "x-3 y");
}

TEST(TemplateTrim, NewlineAndTabCountAsTheSpaceAfterTheDash) {
  EXPECT_EQ(Out("x {{-\n3\t-}} y"), "x3y");
}

TEST(TemplateTrim, DashGluedToNumberBeforeDelimiterIsBadNumber) {
  EXPECT_EQ(Out("{{3-}}"), "ERROR: template: t:1: bad number syntax: \"3-\"");
}

TEST(TemplateTrim, TrimsAcrossNoTextAndKeepsInnerText) {
  EXPECT_EQ(Out("{{- \"a\" -}}   {{- \"b\" -}}  "), "ab");
}

TEST(TemplateComment, IsIgnored) { EXPECT_EQ(Out("a{{/* a comment */}}b"), "ab"); }

TEST(TemplateComment, MaySpanLines) { EXPECT_EQ(Out("a{{/* one\ntwo */}}b"), "ab"); }

TEST(TemplateComment, WithTrimMarkers) { EXPECT_EQ(Out("a \n {{- /* c */ -}} \n b"), "ab"); }

TEST(TemplateComment, MustEndAtTheDelimiter) {
  EXPECT_EQ(Out("{{/* c */ }}"), "ERROR: template: t:1: comment ends before closing delimiter");
  EXPECT_EQ(Out("{{/* c"), "ERROR: template: t:1: unclosed comment");
}

TEST(TemplateLex, StringEscapes) {
  EXPECT_EQ(Out(R"({{"a\tb\n\x41\u00e9\101\\\""}})"),
            "a\tb\nA\xc3\xa9"
            "A\\\"");
}

TEST(TemplateLex, RawStringSpansLinesAndDropsCarriageReturns) {
  EXPECT_EQ(Out("{{`a\\n\r\nb`}}"), "a\\n\nb");
}

TEST(TemplateLex, CharConstantsAreIntegers) {
  EXPECT_EQ(Out("{{'a'}} {{'\\n'}} {{printf \"%c\" 'é'}}"), "97 10 \xc3\xa9");
}

TEST(TemplateLex, Numbers) {
  EXPECT_EQ(Out("{{0x1F}} {{0o17}} {{017}} {{0b101}} {{1_000}} {{1.5}} {{1e3}} {{.5}} {{-7}} "
                "{{+7}} {{0x1p4}} {{1.0}}"),
            "31 15 15 5 1000 1.5 1000 0.5 -7 7 16 1");
}

TEST(TemplateLex, BadNumbers) {
  EXPECT_EQ(Out("{{1__0}}"), "ERROR: template: t:1: illegal number syntax: \"1__0\"");
  EXPECT_EQ(Out("{{0x}}"), "ERROR: template: t:1: illegal number syntax: \"0x\"");
  EXPECT_EQ(Out("{{12abc}}"), "ERROR: template: t:1: bad number syntax: \"12a\"");
  EXPECT_EQ(Out("{{99999999999999999999}}"),
            "ERROR: template: t:1: integer overflow: \"99999999999999999999\"");
}

TEST(TemplateLex, BoolAndNil) {
  EXPECT_EQ(Out("{{true}} {{false}} {{print nil}}"), "true false <nil>");
  EXPECT_EQ(Out("{{nil}}"),
            "ERROR: template: t:1:2: executing \"t\" at <nil>: nil is not a command");
}

TEST(TemplateLex, ActionsMaySpanLines) { EXPECT_EQ(Out("{{print\n1\n2}}"), "1 2"); }

TEST(TemplateLex, UnterminatedQuote) {
  EXPECT_EQ(Out("{{\"abc}}"), "ERROR: template: t:1: unterminated quoted string");
  EXPECT_EQ(Out("{{\"a\nb\"}}"), "ERROR: template: t:1: unterminated quoted string");
}

TEST(TemplateLex, UnclosedAction) {
  EXPECT_EQ(Out("abc {{ .x "), "ERROR: template: t:1: unclosed action");
  EXPECT_EQ(Out("{{ .x\n\n"), "ERROR: template: t:3: unclosed action started at t:1");
}

TEST(TemplateLex, BadCharacterInField) {
  EXPECT_EQ(Out("{{.api-key}}"), "ERROR: template: t:1: bad character U+002D '-'");
}

TEST(TemplateLex, UnrecognizedCharacter) {
  EXPECT_EQ(Out("{{\x01}}"), "ERROR: template: t:1: unrecognized character in action: U+0001");
}

TEST(TemplateParse, UnexpectedTokenInOperand) {
  EXPECT_EQ(Out("a\nb\n{{ .Data } }}"), "ERROR: template: t:3: unexpected \"}\" in operand");
}

TEST(TemplateParse, LongTokenIsShortenedInMessage) {
  EXPECT_EQ(Out("{{end \"0123456789abc\"}}"),
            "ERROR: template: t:1: unexpected \"\\\"012345678\"... in end");
}

TEST(TemplateParse, UndefinedFunction) {
  EXPECT_EQ(Out("{{nosuch 1}}"), "ERROR: template: t:1: function \"nosuch\" not defined");
}

TEST(TemplateParse, UndefinedVariable) {
  EXPECT_EQ(Out("{{$x}}"), "ERROR: template: t:1: undefined variable \"$x\"");
}

TEST(TemplateParse, MissingValue) {
  EXPECT_EQ(Out("{{if}}{{end}}"), "ERROR: template: t:1: missing value for if");
  EXPECT_EQ(Out("{{}}"), "ERROR: template: t:1: missing value for command");
}

TEST(TemplateParse, UnmatchedEndAndElse) {
  EXPECT_EQ(Out("{{end}}"), "ERROR: template: t:1: unexpected {{end}}");
  EXPECT_EQ(Out("{{else}}"), "ERROR: template: t:1: unexpected {{else}}");
  EXPECT_EQ(Out("{{if 1}}x"), "ERROR: template: t:1: unexpected EOF");
}

TEST(TemplateParse, NonExecutableStage) {
  EXPECT_EQ(Out("{{1 | 2}}"), "ERROR: template: t:1: non executable command in pipeline stage 2");
}

TEST(TemplateParse, BreakOutsideRange) {
  EXPECT_EQ(Out("{{break}}"), "ERROR: template: t:1: {{break}} outside {{range}}");
  EXPECT_EQ(Out("{{if 1}}{{continue}}{{end}}"),
            "ERROR: template: t:1: {{continue}} outside {{range}}");
}

TEST(TemplateParse, RangeDeclarations) {
  EXPECT_EQ(Out("{{range $a, $b, $c := .}}{{end}}"),
            "ERROR: template: t:1: too many declarations in range");
  EXPECT_EQ(Out("{{with $a, $b := .}}{{end}}"),
            "ERROR: template: t:1: too many declarations in with");
}

TEST(TemplateParse, DotAfterConstant) {
  EXPECT_EQ(Out("{{\"x\".y}}"), "ERROR: template: t:1: unexpected . after term \"\\\"x\\\"\"");
}

TEST(TemplateParse, UnbalancedParens) {
  EXPECT_EQ(Out("{{(print 1}}"), "ERROR: template: t:1: unclosed left paren");
  EXPECT_EQ(Out("{{print 1)}}"), "ERROR: template: t:1: unexpected right paren U+0029 ')'");
}

TEST(TemplateParse, LineNumbersCountNewlinesInTextAndActions) {
  EXPECT_EQ(Out("one\ntwo\n{{/* x\ny */}}\n{{nosuch}}"),
            "ERROR: template: t:5: function \"nosuch\" not defined");
}

TEST(TemplateParse, CustomDelimiters) {
  Options o;
  o.left_delim = "[[";
  o.right_delim = "]]";
  EXPECT_EQ(Out("{{ .a }} [[ .a ]] [[- \" x\" -]] [[/* c */]]!", Json(R"({"a":1})"), o),
            "{{ .a }} 1 x!");
}

TEST(TemplateParse, CustomDelimitersThatShareCharacters) {
  Options o;
  o.left_delim = "<%";
  o.right_delim = "%>";
  EXPECT_EQ(Out("<% printf \"%d\" .a %>", Json(R"({"a":5})"), o), "5");
}

TEST(TemplateParse, CallerFunctionsAreKnownAtParseTime) {
  EXPECT_EQ(Out("{{secret \"a\"}}"), "ERROR: template: t:1: function \"secret\" not defined");
  auto t = Template::Parse("t", "{{secret \"a\"}}", {}, {"secret"});
  ASSERT_TRUE(t.ok()) << t.status();
  // Known at parse time, but missing when executing.
  auto r = t->Execute(json::value(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "template: t:1:2: executing \"t\" at <secret>: \"secret\" is not a defined function");
}

TEST(TemplateParse, TemplateIsCopyable) {
  auto t = Template::Parse("t", "{{.a}}", {}, {});
  ASSERT_TRUE(t.ok());
  Template copy = *t;
  EXPECT_EQ(*copy.Execute(Json(R"({"a":"x"})"), {}), "x");
  EXPECT_EQ(copy.name(), "t");
}

}  // namespace
}  // namespace strongroom::tmpl::testing
