//! The console's words in the three languages of the regulation: Kazakh,
//! Russian and English. A page asks for a text by its key; the language is
//! the session's (the switch in the header).

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    Kk,
    Ru,
    #[default]
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Kk => "kk",
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.code() == code)
    }

    /// The language's own name, for the switch.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Kk => "Қазақша",
            Lang::Ru => "Русский",
            Lang::En => "English",
        }
    }

    /// One of three texts given in the order kk, ru, en.
    pub fn pick<'a>(self, kk: &'a str, ru: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Kk => kk,
            Lang::Ru => ru,
            Lang::En => en,
        }
    }
}

/// (key, kk, ru, en).
const TEXTS: &[(&str, &str, &str, &str)] = &[
    ("console", "egov консолі", "Консоль egov", "egov console"),
    ("nav", "Негізгі мәзір", "Главное меню", "Main menu"),
    ("language", "Тіл", "Язык", "Language"),
    ("home", "Басты бет", "Главная", "Home"),
    ("operator", "Оператор", "Оператор", "Operator"),
    ("staff", "Қызметкерлер", "Сотрудники", "Provider staff"),
    ("applications", "Өтінімдер", "Заявки", "Applications"),
    ("incidents", "Инциденттер", "Инциденты", "Incidents"),
    ("sla", "Мерзімдер (SLA)", "Сроки (SLA)", "Deadlines (SLA)"),
    ("regulation", "Регламент", "Регламент", "Regulation"),
    (
        "home.intro",
        "Мемлекеттік корпорация мен өңірлік шлюз арасындағы алмасудың веб-консолі: әр әрекет мүшенің кілтімен қол қойылады.",
        "Веб-консоль обмена Государственной корпорации и регионального шлюза: каждое действие подписывается ключом участника.",
        "The web console of the exchange between the State Corporation and the regional gateway: every action is signed with the member's key.",
    ),
    ("login", "Кіру", "Войти", "Log in"),
    ("logout", "Шығу", "Выйти", "Log out"),
    (
        "login.operator",
        "Оператор ретінде кіру (1-процесс)",
        "Вход оператора (процесс 1)",
        "Operator log-in (process 1)",
    ),
    ("login.name", "Логин", "Логин", "Login"),
    ("password", "Құпия сөз", "Пароль", "Password"),
    ("logged.in.as", "Кірген", "Вы вошли как", "Logged in as"),
    ("new.application", "Жаңа өтінім (2-процесс)", "Новая заявка (процесс 2)", "New application (process 2)"),
    ("applicant.iin", "Өтініш берушінің ЖСН", "ИИН заявителя", "Applicant's IIN"),
    ("representative.iin", "Өкілдің ЖСН (бар болса)", "ИИН представителя (если есть)", "Representative's IIN (if any)"),
    ("notarised", "Нотариат куәландырған сенімхат", "Нотариальная доверенность", "Notarised power of attorney"),
    ("poa.number", "Сенімхаттың нөмірі", "Номер доверенности", "Power of attorney number"),
    ("poa.issued", "Сенімхат берілген күн", "Дата выдачи доверенности", "Power of attorney issued on"),
    (
        "open.form",
        "Нысанды ашу және деректерді тексеру",
        "Открыть форму и проверить данные",
        "Open the form and look the data up",
    ),
    ("my.applications", "Менің өтінімдерім", "Мои заявки", "My applications"),
    ("application", "Өтінім", "Заявка", "Application"),
    ("state", "Күйі", "Состояние", "State"),
    ("outcome", "Нәтиже", "Итог", "Outcome"),
    ("due", "Мерзімі", "Срок", "Due"),
    ("registration", "Тіркеу нөмірі", "Регистрационный номер", "Registration"),
    (
        "lookup.result",
        "Деректерді тексеру нәтижесі (3-процесс, 1-шарт)",
        "Результат проверки данных (процесс 3, условие 1)",
        "Look-up result (process 3, condition 1)",
    ),
    ("person", "Тұлға", "Лицо", "Person"),
    ("born", "Туған күні", "Дата рождения", "Born"),
    ("power.of.attorney", "Сенімхат", "Доверенность", "Power of attorney"),
    ("notice", "Хабарлама", "Уведомление", "Notice"),
    ("documents", "Құжаттар", "Документы", "Documents"),
    (
        "attach.sign",
        "Құжаттарды тіркеу және қол қою (5-процесс)",
        "Прикрепить документы и подписать (процесс 5)",
        "Attach the documents and sign (process 5)",
    ),
    (
        "sign.submit",
        "Қол қою және жіберу (5-6-процестер)",
        "Подписать и отправить (процессы 5-6)",
        "Sign and submit (processes 5-6)",
    ),
    ("required", "міндетті", "обязательно", "required"),
    ("hand.over", "Нәтижені беру (9-процесс)", "Выдача результата (процесс 9)", "Hand-over of the result (process 9)"),
    ("take.ticket", "Кезек талонын алу", "Взять талон очереди", "Take a queue ticket"),
    ("issue.result", "Нәтижені беру", "Выдать результат", "Hand the result over"),
    ("ticket", "Талон", "Талон", "Ticket"),
    ("withdraw", "Өтінімді кері қайтарып алу", "Отозвать заявку", "Withdraw the application"),
    ("withdraw.reason", "Себебі", "Причина", "Reason"),
    ("come.back", "Қайта келу уақыты", "Прийти снова", "Come back at"),
    ("tester.view", "Сынаушының көрінісі", "Вид для тестировщика", "Tester's view"),
    ("staff.login", "Қызметкер ретінде кіру", "Вход сотрудника", "Staff log-in"),
    ("member", "Қызметкер", "Сотрудник", "Member"),
    ("queue", "Кезек: маған күтіп тұрған қадамдар", "Очередь: шаги, ожидающие меня", "Queue: steps waiting on me"),
    ("queue.empty", "Күтіп тұрған қадам жоқ.", "Ожидающих шагов нет.", "No step waits on you."),
    (
        "office.receive",
        "Көрсетушінің кеңсесінде өтінішті қабылдау (3-тармақ)",
        "Приём заявления в канцелярии услугодателя (пункт 3)",
        "Receive an application at the provider's office (paragraph 3)",
    ),
    ("office.receive.sign", "Қабылдау және қол қою", "Принять и подписать", "Receive and sign"),
    ("office.received", "Кеңседе қабылданды", "Принято в канцелярии", "Received at the office"),
    ("step", "Қадам", "Шаг", "Step"),
    ("since", "Басталды", "Начат", "Since"),
    ("deadline", "Мерзімі", "Крайний срок", "Deadline"),
    ("actor", "Орындаушы", "Исполнитель", "Actor"),
    ("waits.on", "Күтуде", "Ожидает", "Waits on"),
    ("open", "Ашу", "Открыть", "Open"),
    ("decision", "Шешім", "Решение", "Decision"),
    ("yes", "Иә", "Да", "Yes"),
    ("no", "Жоқ", "Нет", "No"),
    ("ground", "Бас тарту негізі", "Основание отказа", "Refusal ground"),
    ("do.step", "Қадамды орындау және қол қою", "Выполнить шаг и подписать", "Do the step and sign"),
    ("hand.over.draft", "Жобаны басшыға беру", "Передать проект руководителю", "Hand the draft over to the head"),
    ("sign.result", "Нәтижеге қол қою (ЭЦҚ)", "Подписать результат (ЭЦП)", "Sign the result (EDS)"),
    ("draft", "Нәтиже жобасы", "Проект результата", "Draft result"),
    ("signed.result", "Қол қойылған нәтиже", "Подписанный результат", "Signed result"),
    ("search", "Іздеу", "Поиск", "Search"),
    ("any", "кез келген", "любой", "any"),
    ("in.progress", "орындалуда", "в работе", "in progress"),
    ("from", "бастап", "с", "from"),
    ("to", "дейін", "по", "to"),
    ("standing", "Мерзім жағдайы", "Соблюдение сроков", "Standing"),
    ("missed", "өткізілді", "просрочен", "missed"),
    ("at.risk", "қауіп бар", "под угрозой", "at risk"),
    ("met", "сақталды", "соблюдён", "met"),
    ("on.track", "уақытында", "в срок", "on track"),
    ("none.found", "Ештеңе табылмады.", "Ничего не найдено.", "Nothing found."),
    ("path", "Жол", "Путь", "Path"),
    ("started", "Басталды", "Начало", "Started"),
    ("ended", "Аяқталды", "Окончание", "Ended"),
    ("timeline", "Уақыт сызығы (жұмыс күндері)", "Временная шкала (рабочие дни)", "Timeline (working days)"),
    ("diagram", "Блок-схема (1-қосымша)", "Блок-схема (приложение 1)", "Block diagram (Annex 1)"),
    ("messages", "Қол қойылған хабарламалар", "Подписанные сообщения", "Signed messages"),
    (
        "messages.note",
        "Әр қатысушының журналындағы өтінімнің әр хабарламасы; әр қолтаңба сенім тізілімі бойынша тексерілген.",
        "Каждое сообщение заявки в журнале каждого участника; каждая подпись проверена по реестру доверия.",
        "Every message of the application in every participant's log; every signature verified with the trust registry.",
    ),
    ("shep.messages", "ШЭП хабарламалары", "Сообщения ШЭП", "SHEP messages"),
    ("shep.show", "Көрсету", "Показать", "Show"),
    (
        "shep.note",
        "Өтінімнің хабарламалары оның нөмірі бойынша, ШЭП шлюзінің журналымен бірге (әр конвертпен оның SOAP хабарламасы): Мемлекеттік корпорацияның жүйесі сыртқы болғанда, жұмыс орны өтінімді білмейді.",
        "Сообщения заявки по её номеру, вместе с журналом шлюза ШЭП (каждый конверт с его SOAP-сообщением): когда система Государственной корпорации внешняя, рабочее место заявку не знает.",
        "An application's messages by its id, the SHEP edge's log among them (each envelope with its SOAP message): with an external State Corporation system, the workstation does not know the application.",
    ),
    (
        "shep.offer",
        "Өтінімнің хабарламалары ШЭП шлюзінде",
        "Сообщения заявки на шлюзе ШЭП",
        "The application's messages at the SHEP edge",
    ),
    ("shep.off", "ШЭП беті қосылмаған.", "Лицо ШЭП не включено.", "The SHEP face is not on."),
    (
        "hops",
        "Әр қатысушының мониторинг жазбалары",
        "Записи мониторинга каждого участника",
        "Every participant's monitoring records",
    ),
    ("participant", "Қатысушы", "Участник", "Participant"),
    ("sender", "Жіберуші", "Отправитель", "Sender"),
    ("recipient", "Алушы", "Получатель", "Recipient"),
    ("service", "Қызмет", "Сервис", "Service"),
    ("time", "Уақыт", "Время", "Time"),
    ("signatures", "Қолтаңбалар", "Подписи", "Signatures"),
    ("verified", "тексерілді", "проверена", "verified"),
    ("not.verified", "тексерілмеді", "не проверена", "NOT verified"),
    ("body", "Мазмұны", "Содержание", "Body"),
    ("retry", "Қайталау", "Повторить", "Retry"),
    ("attempts", "Талпыныстар", "Попытки", "Attempts"),
    ("last.error", "Соңғы қате", "Последняя ошибка", "Last error"),
    ("target", "Алушы", "Получатель", "Target"),
    ("incidents.none", "Инцидент жоқ.", "Инцидентов нет.", "No incidents."),
    ("show.all", "Барлық жөнелтілмегендерді көрсету", "Показать все ожидающие доставки", "Show every pending delivery"),
    (
        "sla.intro",
        "Мерзімі өткен немесе қауіп төнген қадамдар мен мерзімдер.",
        "Шаги и сроки, которые просрочены или под угрозой.",
        "The steps and terms that missed their deadline or are at risk of it.",
    ),
    ("item", "Қадам немесе мерзім", "Шаг или срок", "Step or term"),
    ("steps", "Қадамдар", "Шаги", "Steps"),
    ("duration", "Ұзақтығы", "Длительность", "Duration"),
    ("next", "Келесі", "Далее", "Next"),
    ("terms", "Мерзімдер", "Сроки", "Terms"),
    ("error", "Қате", "Ошибка", "Error"),
    ("not.found", "Табылмады", "Не найдено", "Not found"),
    ("done", "Орындалды", "Выполнено", "Done"),
    ("file.limit", "Әр файл ең көбі", "Каждый файл не более", "Each file at most"),
    ("unreachable", "қол жетімсіз", "недоступен", "not reachable"),
    ("document.kind", "Түрі", "Вид", "Kind"),
    ("document.title", "Атауы", "Название", "Title"),
    ("pages", "Беттер", "Страниц", "Pages"),
    ("direction", "Бағыты", "Направление", "Direction"),
    ("record.kind", "Жазба", "Запись", "Record"),
    ("status", "Нәтиже коды", "Код результата", "Status"),
];

/// The text of `key` in `lang`; a key missing from the table is shown as
/// `[missing text]` (the unit test checks that every key the pages use is there).
pub fn t(lang: Lang, key: &str) -> &'static str {
    match TEXTS.iter().find(|(k, ..)| *k == key) {
        Some((_, kk, ru, en)) => lang.pick(kk, ru, en),
        None => {
            tracing::warn!(key, "console text missing");
            "[missing text]"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_sources_use_is_in_the_table_in_three_languages() {
        let mut keys = std::collections::BTreeSet::new();
        for (key, kk, ru, en) in TEXTS {
            assert!(keys.insert(*key), "{key} twice");
            assert!(!kk.is_empty() && !ru.is_empty() && !en.is_empty(), "{key}");
        }
        let sources = [
            include_str!("layout.rs"),
            include_str!("operator.rs"),
            include_str!("staff.rs"),
            include_str!("applications.rs"),
            include_str!("incidents.rs"),
            include_str!("lib.rs"),
        ];
        for source in sources {
            for (index, _) in source.match_indices("t(lang, \"") {
                let rest = &source[index + 9..];
                let key = &rest[..rest.find('"').unwrap_or(0)];
                assert!(keys.contains(key), "the text {key:?} is not in i18n.rs");
            }
        }
    }
}
